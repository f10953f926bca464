"""The gateway's Rasa client over several workers: sticky per conversation, fails over only when nothing was sent."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.channels.errors import RasaUnavailable
from bot.channels.rasa_client import RasaClient


class Workers:
    """Two fake Rasa workers; ``down`` refuse connections, ``broken`` accept and then fail."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.broken: set[str] = set()
        self.seen: list[tuple[str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if host in self.broken:
            raise httpx.ReadTimeout("no answer", request=request)
        body = json.loads(request.content)
        self.seen.append((host, body["sender"]))
        messages = [{"recipient_id": body["sender"], "text": f"hi from {host}"}]
        return httpx.Response(200, json={"messages": messages, "parse": {"intent": {"name": "greet"}}, "held": False})


@pytest.fixture()
def workers() -> tuple[Workers, RasaClient]:
    w = Workers()
    return w, RasaClient("http://a:5005, http://b:5006", transport=httpx.MockTransport(w.handle))


def test_each_conversation_sticks_to_one_worker_and_both_get_work(workers: tuple[Workers, RasaClient]) -> None:
    w, client = workers
    for n in range(20):
        for _ in range(3):
            client.turn(f"conv-{n}", "hello", {}, None)
    by_conv: dict[str, set[str]] = {}
    for host, sender in w.seen:
        by_conv.setdefault(sender, set()).add(host)
    assert all(len(hosts) == 1 for hosts in by_conv.values())
    assert {h for hosts in by_conv.values() for h in hosts} == {"a", "b"}


def test_a_refused_connection_moves_to_the_next_worker(workers: tuple[Workers, RasaClient]) -> None:
    w, client = workers
    w.down.add("a")
    replies = [client.turn(f"conv-{n}", "hello", {}, None).replies[0]["text"] for n in range(10)]
    assert set(replies) == {"hi from b"} and len(w.seen) == 10
    w.down.add("b")
    with pytest.raises(RasaUnavailable):
        client.turn("conv-1", "hello", {}, None)


def test_a_worker_that_took_the_request_is_not_retried_elsewhere(workers: tuple[Workers, RasaClient]) -> None:
    w, client = workers
    w.broken.update({"a", "b"})
    with pytest.raises(RasaUnavailable, match="ReadTimeout"):
        client.turn("conv-1", "hello", {}, None)
    assert w.seen == []  # not sent twice (the broken worker may have processed it; nobody else did)


def test_a_turn_reads_replies_parse_and_hold_defensively() -> None:
    answers = iter(
        [
            {"messages": [{"text": "hi"}, "junk"], "parse": {"intent": {"name": "greet"}}, "held": True},
            ["an old REST reply"],  # not a turn answer: nothing usable, no crash
        ]
    )
    client = RasaClient("http://a", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=next(answers))))
    turn = client.turn("c", "hello", {}, 0.9)
    assert turn.replies == [{"text": "hi"}] and turn.parse["intent"]["name"] == "greet" and turn.held
    empty = client.turn("c", "hello", {}, None)
    assert empty.replies == [] and empty.parse == {} and not empty.held
