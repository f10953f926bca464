"""Slack through the real bolt app and WebClient: signatures, retries, customer DMs, the staff channel.

Slack's Web API is the local mock of ``slack_mock``; requests to ``/slack/events`` are signed the way
Slack signs them. Rasa is the in-process fake of ``rasa_fake``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier
from sqlmodel import Session, select

from bot.channels import auth
from bot.channels.app import create_app
from bot.channels.conversations import ChatService
from bot.channels.rasa_client import RasaClient
from core.db import get_engine
from core.models import Handoff
from tests.unit.rasa_fake import FakeRasa
from tests.unit.slack_mock import SlackMock

SECRET = "test-signing-secret"
STAFF_CHANNEL = "CSTAFF"


@pytest.fixture()
def slack(app_settings, monkeypatch):  # type: ignore[no-untyped-def]
    mock = SlackMock()
    settings = app_settings.model_copy(update={
        "slack_bot_token": "xoxb-test", "slack_signing_secret": SECRET, "slack_handoff_channel": STAFF_CHANNEL,
        "slack_api_url": mock.url,
    })  # fmt: skip
    engine = get_engine()
    fake = FakeRasa(engine)
    service = ChatService(engine=engine, rasa=RasaClient("http://rasa", transport=fake.transport()))
    client = TestClient(create_app(settings, service))
    auth.create_user(engine, "ann", "ann-password-1", "agent", slack_user_id="UANN")
    yield client, mock, fake, service
    mock.close()


def _post(client: TestClient, body: str, content_type: str, *, ts: int | None = None, sig: str | None = None,
          retry: int | None = None) -> Any:  # fmt: skip
    stamp = str(ts if ts is not None else int(time.time()))
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sig or SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body),
    }
    if retry is not None:
        headers["X-Slack-Retry-Num"], headers["X-Slack-Retry-Reason"] = str(retry), "http_timeout"
    return client.post("/slack/events", content=body, headers=headers)


def _event(client: TestClient, event: dict[str, Any], event_id: str, **kw: Any) -> Any:
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event})
    return _post(client, body, "application/json", **kw)


def _dm(client: TestClient, text: str, event_id: str, **kw: Any) -> Any:
    event = {"type": "message", "channel_type": "im", "channel": "DCUST", "user": "UCUST", "text": text,
             "ts": f"{time.time():.6f}"}  # fmt: skip
    return _event(client, event, event_id, **kw)


def _click(client: TestClient, user: str, channel: str, action_id: str, value: str) -> Any:
    payload = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": user}, "channel": {"id": channel},
               "actions": [{"action_id": action_id, "value": value, "type": "button"}],
               "trigger_id": "1", "api_app_id": "A1", "token": "x"}  # fmt: skip
    return _post(client, urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def test_forged_and_stale_requests_are_refused(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, fake, _ = slack
    assert _dm(client, "hi", "Ev1", sig="v0=" + "0" * 64).status_code == 401
    assert _dm(client, "hi", "Ev2", ts=int(time.time()) - 600).status_code == 401  # replayed 10 minutes later
    time.sleep(0.3)
    assert fake.received == [] and mock.called("chat.postMessage") == []


def test_a_customer_dm_is_answered_once_even_when_slack_retries(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, fake, _ = slack
    assert _dm(client, "hello", "EvA").status_code == 200
    posts = mock.wait_for("chat.postMessage", 1)
    assert posts[0]["channel"] == "DCUST" and posts[0]["text"] == "bot heard: hello"
    assert _dm(client, "hello", "EvA", retry=1).status_code == 200  # Slack thought we missed it
    time.sleep(0.5)
    assert len(mock.called("chat.postMessage")) == 1 and [r[1] for r in fake.received] == ["hello"]
    assert fake.received[0][0] == "slack-T1-UCUST" and fake.received[0][2]["channel"] == "slack"


def test_handoff_in_the_staff_channel_claim_thread_reply_resolve(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, _, service = slack
    _dm(client, "I need an agent <@U999>", "EvH1")
    posts = mock.wait_for("chat.postMessage", 2)
    staff_post = next(p for p in posts if p["channel"] == STAFF_CHANNEL)
    text = json.dumps(staff_post["blocks"])
    assert "Handoff #1" in text and "explicit_request" in text and "/console/conversations/slack-T1-UCUST" in text
    assert '"action_id": "handoff_claim"' in text and "I need an agent <@U999>" in text  # shown as plain text
    customer_post = next(p for p in posts if p["channel"] == "DCUST")
    assert "asked a colleague" in customer_post["text"] and "customer_button_0" in json.dumps(customer_post["blocks"])

    assert _click(client, "UNOBODY", STAFF_CHANNEL, "handoff_claim", "1").status_code == 200
    assert "not linked" in mock.wait_for("chat.postEphemeral", 1)[0]["text"]
    _click(client, "UANN", STAFF_CHANNEL, "handoff_claim", "1")
    updates = mock.wait_for("chat.update", 1)
    assert "Handoff #1 · claimed · ann" in json.dumps(
        updates[0]["blocks"], ensure_ascii=False
    ) and "handoff_resolve" in json.dumps(updates[0]["blocks"])
    with Session(service.engine) as s:
        handoff = s.exec(select(Handoff)).one()
    assert handoff.state == "claimed" and handoff.agent == "ann"

    thread = {"type": "message", "channel": STAFF_CHANNEL, "user": "UANN", "text": "Hi, Ann here",
              "thread_ts": handoff.slack_ts, "ts": f"{time.time():.6f}"}  # fmt: skip
    _event(client, thread, "EvH2")
    deadline = time.monotonic() + 10
    while not any(p["text"] == "ann (support): Hi, Ann here" for p in mock.called("chat.postMessage")):
        assert time.monotonic() < deadline, mock.called("chat.postMessage")
        time.sleep(0.05)
    n = len(mock.called("chat.postMessage"))
    _dm(client, "thanks, my order is late", "EvH3")
    posts = mock.wait_for("chat.postMessage", n + 1)
    assert posts[-1]["thread_ts"] == handoff.slack_ts and posts[-1]["text"] == "Customer: thanks, my order is late"

    _click(client, "UANN", STAFF_CHANNEL, "handoff_resolve", "1")
    deadline = time.monotonic() + 10
    while not any("How happy are you" in p["text"] for p in mock.called("chat.postMessage")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    csat = next(p for p in mock.called("chat.postMessage") if "How happy are you" in p["text"])
    assert csat["channel"] == "DCUST"


def test_customer_buttons_in_slack_send_their_payload(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, fake, _ = slack
    _dm(client, "agent please", "EvB1")
    mock.wait_for("chat.postMessage", 2)
    cancel = json.dumps({"title": "Cancel", "payload": "/handoff_cancel"})
    assert _click(client, "UCUST", "DCUST", "customer_button_0", cancel).status_code == 200
    posts = mock.wait_for("chat.postMessage", 4)
    assert any("taken you out of the queue" in p["text"] and p["channel"] == "DCUST" for p in posts)
    assert [r[1] for r in fake.received] == ["agent please"]  # the cancel never reached Rasa as a message


def test_a_rasa_outage_is_told_to_the_slack_customer(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, fake, _ = slack
    fake.down = True
    _dm(client, "where is my parcel?", "EvO1")
    posts = mock.wait_for("chat.postMessage", 1)
    assert posts[0]["channel"] == "DCUST" and "try again in a minute" in posts[0]["text"]


def test_the_risk_team_acknowledges_an_alert_in_slack(slack) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from core.models import AlertIncident

    client, mock, _, service = slack
    with Session(service.engine) as s:
        incident = AlertIncident(engine_id=7, opened_at=datetime.now(UTC))
        s.add(incident)
        s.commit()
        incident_id = incident.id
    _click(client, "UANN", "CRISK", "alert_ack", str(incident_id))
    assert "acknowledged by ann" in mock.wait_for("chat.postEphemeral", 1)[0]["text"]
    _click(client, "UOTHER", "CRISK", "alert_ack", str(incident_id))
    assert "acknowledged by ann" in mock.wait_for("chat.postEphemeral", 2)[1]["text"]  # the first one counts
    with Session(service.engine) as s:
        row = s.get(AlertIncident, incident_id)
    assert row is not None and (row.acked_by, row.ack_via) == ("ann", "slack")


DEEP = b"[" * 5000 + b"]" * 5000
BAD_BODIES = [
    (b"not json at all", "application/json"),
    (b"\xff\xfe not UTF-8", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"{", "application/json"),
    (b'{"type": "event_callback", "event": ' + DEEP + b"}", "application/json"),
    (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
    (b"payload=" + b"%5B" * 5000 + b"%5D" * 5000, "application/x-www-form-urlencoded"),
]


def _sign(body: bytes, stamp: str) -> str:
    """Slack's v0 signature over raw bytes (``SignatureVerifier`` only signs text)."""
    return "v0=" + hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def _raw_post(client: TestClient, body: bytes, content_type: str, headers: dict[str, str]) -> Any:
    return client.post("/slack/events", content=body, headers={"Content-Type": content_type, **headers})


def test_unsigned_or_forged_requests_are_401_whatever_the_body(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, fake, _ = slack
    now, old = str(int(time.time())), str(int(time.time()) - 600)
    for body, content_type in BAD_BODIES:
        for headers in [
            {},  # unsigned
            {"X-Slack-Request-Timestamp": now},
            {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64},  # forged
            {"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": _sign(body, "not-a-number")},
            {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=x"},
            {"X-Slack-Request-Timestamp": old, "X-Slack-Signature": _sign(body, old)},  # stale
        ]:
            r = _raw_post(client, body, content_type, headers)
            assert r.status_code == 401, (body[:30], headers, r.text)
            assert r.json()["detail"] == "invalid or missing Slack signature"
    assert fake.received == [] and mock.called("chat.postMessage") == []


def test_a_signed_malformed_body_is_400(slack, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    client, _, fake, _ = slack
    stamp = str(int(time.time()))
    for body, content_type in BAD_BODIES:
        with caplog.at_level("INFO"):
            r = _raw_post(client, body, content_type,
                          {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": _sign(body, stamp)})  # fmt: skip
        assert r.status_code == 400, (body[:30], r.text)
        assert r.json()["detail"].startswith("the body")
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "not json at all" not in logged and "not-json" not in logged and "[[[" not in logged  # bodies: never
    assert fake.received == []


def test_a_slack_message_with_a_lone_surrogate_is_refused_with_a_note(slack) -> None:  # type: ignore[no-untyped-def]
    client, mock, fake, _ = slack
    assert _dm(client, "hello \ud800 there", "EvU1").status_code == 200  # json.dumps writes it as \\ud800
    posts = mock.wait_for("chat.postMessage", 1)
    assert posts[0]["channel"] == "DCUST" and posts[0]["text"] == "Not sent: the message is not valid Unicode"
    assert fake.received == []
