"""The production shape, for real: PostgreSQL for the app and Rasa's tracker, a Redis lock store shared by
two Rasa workers, RabbitMQ carrying Rasa's events to the monitor, all started by ``core.stack`` (the
project's own launcher) against the servers on this machine; then its parts die and come back.

PostgreSQL, Redis and RabbitMQ are reached through fault-injection proxies (benchmarks/tcp_proxy.py),
so "the database restarts" cuts every connection of this stack without touching the shared servers.
Customers talk to the gateway's web chat API, as the web page does. The tests run in file order on
one stack.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import socket
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from benchmarks.scratch_pg import fresh_pg_database, postgres_available
from benchmarks.tcp_proxy import TcpProxy
from core.db import make_engine
from core.models import ChatMessage, Turn
from core.stack import Service, free_ports_in_a_row, start, wait_healthy
from tests.integration.conftest import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.postgres]
REDIS_DB = 9  # our lock store's database on the shared Redis
IDENTITY_SECRET = "scale-out-identity-secret"  # the shop signs its customers (orders are shown to their owner)
SORRY = "can't answer right now"


def _redis(command: str, port: int = 6379) -> str:
    """One inline Redis command (no client library needed); the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(command.encode() + b"\r\n")
        time.sleep(0.2)
        return s.recv(1 << 16).decode(errors="replace")


def _redis_calls(name: str) -> int:
    for line in _redis("INFO commandstats").splitlines():
        if line.startswith(f"cmdstat_{name}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@dataclass
class Cluster:
    """The running stack and its fault switches."""

    stack: Stack
    pg: TcpProxy
    redis: TcpProxy
    amqp: TcpProxy
    direct_url: str  # the database without the proxy (the test's own checks)

    def customer(self, worker: int | None = None) -> Customer:
        """A new web-chat customer; with ``worker``, one whose conversation the gateway sends to that Rasa worker."""
        while True:
            c = Customer(self.stack.gateway, self.stack.settings.webchat_identity_secret)
            if worker is None or zlib.crc32(c.conversation_id.encode()) % 2 == worker:
                return c

    def count(self, sql: str, **params: Any) -> int:
        engine = make_engine(self.direct_url)
        with engine.connect() as conn:
            n = int(conn.execute(text(sql), params).scalar_one())
        engine.dispose()
        return n


class Customer:
    """One web-chat conversation through the gateway, signed in by the shop as Ana (whose order is 100234)."""

    def __init__(self, gateway: str, identity_secret: str) -> None:
        self.http = httpx.Client(base_url=gateway, timeout=90)
        sig = hmac.new(identity_secret.encode(), b"c-ana", hashlib.sha256).hexdigest()
        r = self.http.post("/api/chat/sessions", json={"customer_id": "c-ana", "signature": sig})
        r.raise_for_status()
        self.conversation_id = r.json()["conversation_id"]
        self.http.headers["Authorization"] = f"Bearer {r.json()['token']}"

    def send(self, text: str) -> httpx.Response:
        return self.http.post("/api/chat/messages", json={"text": text})

    def say(self, text: str) -> str:
        """The replies (bot and system messages) to one message, joined."""
        r = self.send(text)
        assert r.status_code == 200, r.text
        return "\n".join(m["text"] for m in r.json()["messages"][1:])


@pytest.fixture(scope="module")
def cluster(
    quick_nlu_model: Path, quick_rec_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    if not postgres_available() or not _reachable(6379) or not _reachable(5672):
        pytest.skip("needs PostgreSQL, Redis and RabbitMQ on 127.0.0.1 (5432, 6379, 5672)")
    proxies = {"pg": TcpProxy(5432), "redis": TcpProxy(6379), "amqp": TcpProxy(5672)}
    queue = f"storebot-scale-{uuid.uuid4().hex[:8]}"
    with fresh_pg_database("storebot_scale") as direct_url:
        url = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxies['pg'].port}")
        for stack in running_stack(
            url, quick_nlu_model, quick_rec_model, tmp_path_factory,
            rasa_workers=2, rasa_port=free_ports_in_a_row(2),
            lock_store_url=f"redis://127.0.0.1:{proxies['redis'].port}/{REDIS_DB}",
            event_broker_url=f"amqp://guest:guest@127.0.0.1:{proxies['amqp'].port}/%2F", event_broker_queue=queue,
            monitor_reconcile_seconds=5, webchat_identity_secret=IDENTITY_SECRET,
            rate_customer_per_minute=0,  # every customer here is Ana; the per-customer limit has its unit test
        ):  # fmt: skip
            yield Cluster(stack, proxies["pg"], proxies["redis"], proxies["amqp"], direct_url)
    for proxy in proxies.values():
        proxy.close()
    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    conn.channel().queue_delete(queue)
    conn.close()


def kill(svc: Service) -> None:
    """SIGKILL a service's whole process group (Sanic servers fork workers), as a crash would."""
    assert svc.proc is not None
    os.killpg(svc.proc.pid, signal.SIGKILL)
    svc.proc.wait(timeout=20)
    _eventually(lambda: not _reachable(int(svc.health_url.split(":")[2].split("/")[0])), seconds=20)


def _eventually(check: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(1)


def _turns(cluster: Cluster, conversation_ids: list[str]) -> list[Turn]:
    engine = make_engine(cluster.direct_url)
    with Session(engine) as s:
        rows = list(s.exec(select(Turn).where(col(Turn.sender_id).in_(conversation_ids))))
    engine.dispose()
    return rows


def test_two_rasa_workers_share_conversations_through_postgres_and_redis(cluster: Cluster) -> None:
    locks_before = _redis_calls("set")
    customers = [cluster.customer(worker=i % 2) for i in range(8)]

    def conversation(c: Customer) -> list[str]:
        return [c.say("hello"), c.say("can you track my order"), c.say("it's 100234")]

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(conversation, customers))
    for hello, ask, status in replies:
        assert "store assistant" in hello and "order number" in ask and "on its way with UPS" in status
    assert _redis_calls("set") - locks_before >= 24  # every turn took its conversation's lock in Redis
    ids = [c.conversation_id for c in customers]
    assert cluster.count("SELECT count(*) FROM events WHERE type_name = 'user' AND sender_id = ANY(:ids)",
                         ids=ids) == 24  # fmt: skip
    _eventually(lambda: len(_turns(cluster, ids)) == 24)  # Rasa -> RabbitMQ -> monitor -> turn table
    assert all(t.message_id and t.tracker_event_id is None for t in _turns(cluster, ids))


def test_a_rasa_worker_dies_mid_conversation_and_the_other_carries_on(cluster: Cluster) -> None:
    c = cluster.customer(worker=1)
    assert "order number" in c.say("can you track my order")
    second = cluster.stack.services["rasa-2"]
    kill(second)
    assert "on its way with UPS" in c.say("it's 100234")  # worker 1 continues the form from the shared tracker
    start(second, cluster.stack.settings)
    wait_healthy(second, 180)
    assert "store assistant" in c.say("hello")


def test_the_action_server_restarts(cluster: Cluster) -> None:
    c = cluster.customer()
    actions = cluster.stack.services["actions"]
    kill(actions)
    assert "can't look that up right now" in c.say("where is my order 100234?")  # an apology, not silence
    start(actions, cluster.stack.settings)
    wait_healthy(actions, 120)
    assert "on its way with UPS" in c.say("where is my order 100234?")


def test_the_database_restarts(cluster: Cluster) -> None:
    c = cluster.customer()
    assert "store assistant" in c.say("hello")
    cluster.pg.down()
    r = c.send("where is my order 100234?")
    assert r.status_code == 503 and "send that again" in r.json()["detail"]  # the widget keeps the text
    time.sleep(3)
    cluster.pg.up()
    assert "on its way with UPS" in c.say("where is my order 100234?")  # the customer resends; it works
    stored = cluster.count("SELECT count(*) FROM chat_message WHERE conversation_id = :c AND role = 'customer'",
                           c=c.conversation_id)  # fmt: skip
    assert stored == 2  # the refused attempt was not half-stored
    _eventually(lambda: len(_turns(cluster, [c.conversation_id])) == 2)  # the monitor recovered too


def test_the_broker_restarts_and_no_turn_is_lost_or_doubled(cluster: Cluster) -> None:
    c = cluster.customer()
    cluster.amqp.down()
    for message in ["hello", "where is my order 100234?", "thanks"]:
        assert c.say(message).strip()  # customers do not notice
    time.sleep(3)  # Rasa drops the events it cannot publish; the monitor finds those turns in the tracker store
    cluster.amqp.up()
    _eventually(lambda: len(_turns(cluster, [c.conversation_id])) == 3, seconds=120)
    time.sleep(5)
    assert len(_turns(cluster, [c.conversation_id])) == 3


def test_the_lock_store_restarts(cluster: Cluster) -> None:
    c = cluster.customer()
    cluster.redis.down()
    reply = c.say("hello")
    assert SORRY in reply or "store assistant" in reply  # told to retry, never an error page
    cluster.redis.up()
    _eventually(lambda: "store assistant" in c.say("hello"), seconds=60)


def test_nothing_was_duplicated(cluster: Cluster) -> None:
    engine = make_engine(cluster.direct_url)
    with Session(engine) as s:
        doubled = s.exec(select(Turn.message_id, func.count()).group_by(Turn.message_id)
                         .having(func.count() > 1)).all()  # fmt: skip
        customer_messages = s.exec(select(func.count()).select_from(ChatMessage)
                                   .where(ChatMessage.role == "customer")).one()  # fmt: skip
    engine.dispose()
    assert doubled == [] and customer_messages > 30


def test_no_secret_or_personal_data_reaches_the_logs_or_the_tracker(cluster: Cluster) -> None:
    c = cluster.customer()
    email, phone, card = "jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111"
    reply = c.say(f"I'm {email}, call me on {phone}; my card {card} was charged twice")
    assert reply.strip()
    for raw in (email, phone, card):
        assert cluster.count("SELECT count(*) FROM events WHERE data LIKE :p", p=f"%{raw}%") == 0
        assert cluster.count("SELECT count(*) FROM chat_message WHERE text LIKE :p", p=f"%{raw}%") == 0
        assert cluster.count("SELECT count(*) FROM turn WHERE text LIKE :p", p=f"%{raw}%") == 0
    settings = cluster.stack.settings
    secrets = [
        settings.nlu_token,
        settings.slack_signing_secret,
        settings.slack_bot_token,
        settings.rasa_token,
        settings.action_token,
        settings.metrics_token,
        IDENTITY_SECRET,
    ]
    logs = {p.name: p.read_text(errors="replace") for p in (settings.var_dir / "logs").glob("*.log")}
    assert {"gateway.log", "rasa.log", "rasa-2.log", "nlu.log", "actions.log", "worker.log"} <= set(logs)
    for name, content in logs.items():
        for needle in [email, phone, card, *secrets]:
            assert needle not in content, f"{needle!r} in {name}"
