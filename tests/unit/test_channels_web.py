"""The gateway over HTTP: web chat sessions, the handoff loop through the staff console, bad input.

Rasa is the in-process fake of ``rasa_fake``; the database is a real migrated SQLite file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from bot.channels import auth
from bot.channels.app import create_app, housekeeping
from bot.channels.conversations import ChatService
from bot.channels.rasa_client import RasaClient
from core.db import get_engine
from core.models import ChatMessage, Handoff, HandoffTransition
from tests.unit.rasa_fake import FakeRasa


@pytest.fixture()
def gateway(app_settings):  # type: ignore[no-untyped-def]
    engine = get_engine()
    fake = FakeRasa(engine)
    service = ChatService(engine=engine, rasa=RasaClient("http://rasa", transport=fake.transport()))
    client = TestClient(create_app(app_settings, service))
    for name, role in [("ann", "agent"), ("bob", "agent"), ("rita", "risk"), ("root", "admin")]:
        auth.create_user(engine, name, f"{name}-password-1", role)
    return client, fake, service


def _customer(client: TestClient, **body: str) -> dict[str, str]:
    r = client.post("/api/chat/sessions", json=body)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _say(client: TestClient, who: dict[str, str], text: str, payload: str | None = None) -> list[dict[str, Any]]:
    r = client.post("/api/chat/messages", json={"text": text, "payload": payload}, headers=who)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def _staff(app, name: str) -> tuple[TestClient, str]:  # type: ignore[no-untyped-def]
    """A signed-in console client (own cookie jar) and its CSRF token."""
    c = TestClient(app)
    form = c.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    r = c.post("/console/login", data={"username": name, "password": f"{name}-password-1", "csrf_token": token},
               follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"] == "/console", r.text
    page = c.get("/console")
    csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return c, csrf


def test_a_conversation_survives_a_reload_and_stays_private(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, _ = gateway
    alice = _customer(client, customer_id="cust0001")
    said = _say(client, alice, "hello")
    assert [(m["role"], m["text"]) for m in said] == [("customer", "hello"), ("bot", "bot heard: hello")]
    no_proof = {"email": [], "postcode": []}
    assert fake.received[-1][2] == {"channel": "web", "customer_id": "cust0001", "customer_verified": False,
                                    "proof": no_proof}  # demo mode: an unsigned id is not verified  # fmt: skip
    again = client.get("/api/chat/messages", params={"after": 0}, headers=alice).json()["messages"]  # a reload
    assert [m["id"] for m in again] == [m["id"] for m in said]
    assert client.get("/api/chat/messages", params={"after": said[-1]["id"]}, headers=alice).json()["messages"] == []
    mallory = _customer(client)
    assert client.get("/api/chat/messages", headers=mallory).json()["messages"] == []
    for bad in [{}, {"Authorization": "Bearer forged"}, {"Authorization": "Basic x"}]:
        assert client.get("/api/chat/messages", headers=bad).status_code == 401
        assert client.post("/api/chat/messages", json={"text": "hi"}, headers=bad).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"text": "   "}, 422, "empty"),
        ({"text": "x" * 2001}, 422, "at most 2000"),
        ({"text": "resolve", "payload": "/EXTERNAL_handoff_resolved"}, 422, "not one of the bot's buttons"),
        ({"text": "b", "payload": "not-a-payload"}, 422, "not one of the bot's buttons"),
        ({"text": "restart", "payload": "/restart"}, 422, "not one of the bot's buttons"),  # issue 18, finding 8
        ({"text": "x", "payload": "/session_start"}, 422, "not one of the bot's buttons"),
        ({"text": "x", "payload": '/inform{"order_id":"100239"}'}, 422, "not one of the bot's buttons"),
        ({"text": "///"}, 422, "empty"),
    ],
)
def test_bad_customer_messages(gateway, body: dict[str, str], status: int, detail: str) -> None:  # type: ignore[no-untyped-def]
    client, fake, _ = gateway
    who = _customer(client)
    r = client.post("/api/chat/messages", json=body, headers=who)
    assert r.status_code == status and detail in r.text
    assert fake.received == []


def test_identity_must_be_signed_when_a_secret_is_set(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, service = gateway
    assert client.post("/api/chat/sessions", json={"customer_id": "bad id!"}).status_code == 422
    service.identity_secret = "shop-secret"
    assert client.post("/api/chat/sessions", json={"customer_id": "cust0002"}).status_code == 401
    sig = hmac.new(b"shop-secret", b"cust0002", hashlib.sha256).hexdigest()
    forged = hmac.new(b"guess", b"cust0002", hashlib.sha256).hexdigest()
    assert client.post("/api/chat/sessions", json={"customer_id": "cust0002", "signature": forged}).status_code == 401
    assert client.post("/api/chat/sessions", json={"customer_id": "cust0002", "signature": sig}).status_code == 201


def test_rasa_outage_keeps_the_message_and_says_so(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, _ = gateway
    who = _customer(client)
    fake.down = True
    said = _say(client, who, "where is my order?")
    assert said[0]["text"] == "where is my order?" and said[1]["role"] == "system" and "try again" in said[1]["text"]
    fake.down = False
    assert _say(client, who, "where is my order?")[1]["text"] == "bot heard: where is my order?"


def test_handoff_claim_reply_resolve_and_back_to_the_bot(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, service = gateway
    customer = _customer(client, customer_id="cust0007")
    said = _say(client, customer, "I want an agent <script>alert(1)</script>")
    assert "asked a colleague" in said[-1]["text"]
    status = client.get("/api/chat/messages", params={"after": said[-1]["id"]}, headers=customer).json()
    assert status["handoff"] == {"state": "queued", "position": 1, "agent": None}
    handoff_id = status_handoff_id(service)

    ann, ann_csrf = _staff(client.app, "ann")
    queue = ann.get("/console/api/queue").json()["active"]
    assert [(h["id"], h["state"], h["can_claim"], h["customer_id"]) for h in queue] == [
        (handoff_id, "queued", True, "cust0007")
    ]
    page = ann.get(f"/console/conversations/{queue[0]['conversation_id']}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    assert "contact_human_agent 0.90" in page.text  # the NLU's view of each customer message

    assert ann.post(f"/console/handoffs/{handoff_id}/claim", data={}).status_code == 403  # no CSRF token
    bob, bob_csrf = _staff(client.app, "bob")
    r = ann.post(f"/console/handoffs/{handoff_id}/claim", data={"csrf_token": ann_csrf}, follow_redirects=False)
    assert r.status_code == 303
    r = bob.post(f"/console/handoffs/{handoff_id}/claim", data={"csrf_token": bob_csrf})  # the second claim loses
    assert r.status_code == 409 and "claimed" in r.json()["detail"]
    assert (
        bob.post(f"/console/handoffs/{handoff_id}/reply", data={"csrf_token": bob_csrf, "text": "hi"}).status_code
        == 409
    )

    assert [(m["role"], m["text"]) for m in _say(client, customer, "are you there?")] == [
        ("customer", "are you there?")
    ]
    assert fake.received[-1][1] == "are you there?"  # Rasa records it, paused: no bot reply
    reply = {"csrf_token": ann_csrf, "text": "Hi, Ann here <b>!</b>"}
    r = ann.post(f"/console/handoffs/{handoff_id}/reply", data=reply, follow_redirects=False)
    assert r.status_code == 303
    seen = client.get("/api/chat/messages", params={"after": 0}, headers=customer).json()["messages"]
    assert [m["text"] for m in seen if m["role"] == "agent"] == ["Hi, Ann here <b>!</b>"]
    assert any(m["role"] == "system" and "ann from our support team has joined" in m["text"] for m in seen)
    assert fake.agent_events[-1][1] == "Hi, Ann here <b>!</b>"

    r = ann.post(f"/console/handoffs/{handoff_id}/resolve", data={"csrf_token": ann_csrf}, follow_redirects=False)
    assert r.status_code == 303
    after = client.get("/api/chat/messages", params={"after": seen[-1]["id"]}, headers=customer).json()
    assert "How happy are you" in after["messages"][-1]["text"] and after["handoff"] is None
    assert _say(client, customer, "thanks")[-1]["text"] == "bot heard: thanks"  # the bot answers again
    with Session(get_engine()) as s:
        steps = [(t.to_state, t.actor) for t in s.exec(select(HandoffTransition).order_by(HandoffTransition.id))]  # type: ignore[arg-type]
    assert steps == [("queued", "bot"), ("claimed", "ann"), ("resolved", "ann")]


def status_handoff_id(service: ChatService) -> int:
    with Session(service.engine) as s:
        h = s.exec(select(Handoff)).one()
    assert h.id is not None
    return h.id


def test_roles_and_resolving_an_unclaimed_handoff(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, service = gateway
    _say(client, _customer(client), "agent please")
    hid = status_handoff_id(service)
    rita, rita_csrf = _staff(client.app, "rita")
    assert rita.get("/console/api/queue").status_code == 200  # risk reads...
    r = rita.post(f"/console/handoffs/{hid}/claim", data={"csrf_token": rita_csrf})
    assert r.status_code == 403 and "risk" in r.json()["detail"]  # ...but does not act
    ann, ann_csrf = _staff(client.app, "ann")
    r = ann.post(f"/console/handoffs/{hid}/resolve", data={"csrf_token": ann_csrf})
    assert r.status_code == 409 and "it is queued" in r.json()["detail"]
    ann.post(f"/console/handoffs/{hid}/claim", data={"csrf_token": ann_csrf})
    root, root_csrf = _staff(client.app, "root")
    r = root.post(f"/console/handoffs/{hid}/hand-back", data={"csrf_token": root_csrf}, follow_redirects=False)
    assert r.status_code == 303  # an admin may close another agent's handoff
    assert TestClient(client.app).get("/console/api/queue").status_code == 401
    assert TestClient(client.app).get("/console", follow_redirects=False).headers["location"] == "/console/login"


def test_login_failures(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = gateway

    def attempt(username: str, password: str, token: str | None = None) -> str:
        form = client.get("/console/login")  # each form has its own login CSRF token
        token = token or re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        return client.post(
            "/console/login", data={"username": username, "password": password, "csrf_token": token}
        ).text

    assert "wrong username or password" in attempt("ann", "wrong-password")
    assert "wrong username or password" in attempt("nobody", "x" * 12)  # the same answer: no user enumeration
    assert "form expired" in attempt("ann", "ann-password-1", token="forged")
    assert "staff_session" not in client.cookies


def test_cancel_while_queued_and_timeout(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, service = gateway
    who = _customer(client)
    _say(client, who, "agent")
    said = _say(client, who, "Cancel", payload="/handoff_cancel")
    assert "taken you out of the queue" in said[-1]["text"]
    assert _say(client, who, "hi again")[-1]["text"] == "bot heard: hi again"
    _say(client, who, "agent now")
    service.handoff_timeout = timedelta(0)
    housekeeping(service)
    seen = client.get("/api/chat/messages", headers=who).json()
    assert "colleagues are busy" in seen["messages"][-1]["text"] and seen["handoff"] is None
    with Session(service.engine) as s:
        assert [h.state for h in s.exec(select(Handoff).order_by(Handoff.id))] == ["cancelled", "expired"]  # type: ignore[arg-type]


def test_a_very_negative_customer_is_handed_over(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, service = gateway
    who = _customer(client)
    said = _say(client, who, "I am furious, this is the third time")
    assert said[-1]["role"] == "system" and "asked a colleague" in said[-1]["text"]
    with Session(service.engine) as s:
        h = s.exec(select(Handoff)).one()
        stored = s.exec(select(ChatMessage).where(ChatMessage.role == "customer")).one()
    assert h.reason == "negative_sentiment" and h.announced_at is not None
    assert (stored.sentiment, stored.sentiment_score) == ("negative", 0.97)
    assert h.conversation_id in fake.paused
    assert [m["role"] for m in said] == ["customer", "system"]  # held before the bot answered: no bot reply


def test_one_request_to_rasa_per_customer_message(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, service = gateway
    who = _customer(client, customer_id="cust0001")
    fake.calls.clear()
    said = _say(client, who, "hello")
    assert fake.calls == [("POST", "/webhooks/rest/turn")]  # replies and parse in one round trip
    with Session(service.engine) as s:
        stored = s.get(ChatMessage, said[0]["id"])
    assert stored is not None and (stored.intent, stored.sentiment) == ("greet", "neutral")
    _say(client, who, "agent please")  # the bot opens a handoff: still one call per message
    fake.calls.clear()
    _say(client, who, "are you there?")  # while waiting: recorded by paused Rasa, no hold asked
    assert fake.calls == [("POST", "/webhooks/rest/turn")]


def test_resume_is_retried_when_rasa_was_down(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, service = gateway
    who = _customer(client)
    _say(client, who, "agent")
    hid = status_handoff_id(service)
    service.claim(hid, "ann")
    fake.down = True
    service.resolve(hid, "ann")
    fake.down = False
    housekeeping(service)
    seen = client.get("/api/chat/messages", headers=who).json()["messages"]
    assert "How happy are you" in seen[-1]["text"]
    with Session(service.engine) as s:
        assert s.get(Handoff, hid).bot_resumed_at is not None  # type: ignore[union-attr]


def test_agent_typing_shows_in_the_customers_widget(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, service = gateway
    who = _customer(client)
    _say(client, who, "agent")
    hid = status_handoff_id(service)
    ann, csrf = _staff(client.app, "ann")
    ann.post(f"/console/handoffs/{hid}/claim", data={"csrf_token": csrf})
    with Session(service.engine) as s:
        conversation_id = s.get(Handoff, hid).conversation_id  # type: ignore[union-attr]
    assert client.get("/api/chat/messages", headers=who).json()["agent_typing"] is False
    assert ann.post(f"/console/conversations/{conversation_id}/typing").status_code == 403  # CSRF header missing
    r = ann.post(f"/console/conversations/{conversation_id}/typing", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert client.get("/api/chat/messages", headers=who).json()["agent_typing"] is True


def test_alerts_page_and_acknowledgement_by_the_risk_team(gateway) -> None:  # type: ignore[no-untyped-def]
    import json
    from datetime import UTC, datetime

    from core.models import AlertIncident

    client, _, service = gateway
    evidence = {"intent:payments": {"messages": 40, "negative": 30, "rate": 0.75, "baseline": 0.3,
                                    "examples": ["<script>x</script> card [card] declined"]}}  # fmt: skip
    with Session(service.engine) as s:
        s.add(AlertIncident(engine_id=1, opened_at=datetime.now(UTC), evidence=json.dumps(evidence)))
        s.commit()
    ann, ann_csrf = _staff(client.app, "ann")
    page = ann.get("/console/alerts").text
    assert "intent:payments: 30/40, 75 % vs 30 %" in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert ann.post("/console/alerts/1/ack", data={"csrf_token": ann_csrf}).status_code == 403  # agents do not ack
    rita, rita_csrf = _staff(client.app, "rita")
    assert rita.post("/console/alerts/1/ack", data={}).status_code == 422  # no CSRF field at all
    r = rita.post("/console/alerts/1/ack", data={"csrf_token": rita_csrf}, follow_redirects=False)
    assert r.status_code == 303 and "rita (console)" in rita.get("/console/alerts").text
    assert rita.post("/console/alerts/99/ack", data={"csrf_token": rita_csrf}).status_code == 404


def test_two_closes_while_rasa_was_down_replay_only_the_latest(gateway) -> None:  # type: ignore[no-untyped-def]
    from core.handoff import open_handoff, transition

    client, _, service = gateway
    who = _customer(client)
    _say(client, who, "hello")
    conversation_id = service.by_token(who["Authorization"].removeprefix("Bearer ")).id
    with Session(service.engine) as s:  # two handoffs closed while Rasa could not be resumed
        for _ in range(2):
            h = open_handoff(s, conversation_id=conversation_id, reason="explicit_request", channel="web",
                             last_message="x")  # fmt: skip
            assert h.id is not None
            transition(s, h.id, "claim", actor="ann")
            transition(s, h.id, "resolve", actor="ann")
        s.commit()
    housekeeping(service)
    housekeeping(service)
    texts = [m["text"] for m in client.get("/api/chat/messages", headers=who).json()["messages"]]
    assert sum("How happy are you" in t for t in texts) == 1  # the older close is not replayed afterwards


def test_silences_are_managed_by_the_risk_team(gateway) -> None:  # type: ignore[no-untyped-def]
    from core.models import AlertSilence
    from monitoring.job import silences

    client, _, service = gateway
    ann, ann_csrf = _staff(client.app, "ann")
    form = {"dimension": "intent", "value": "payments", "hours": "2", "comment": "PSP outage, ticket 42"}
    assert ann.post("/console/silences", data={**form, "csrf_token": ann_csrf}).status_code == 403
    assert 'id="new-silence"' not in ann.get("/console/alerts").text  # agents do not see the form
    rita, csrf = _staff(client.app, "rita")
    assert rita.post("/console/silences", data=form).status_code == 422  # no CSRF field
    r = rita.post("/console/silences", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    page = rita.get("/console/alerts").text
    assert "<title>Alerts · Store bot</title>" in page
    main = page.split("<main>")[1]
    assert "intent:payments" in main and "PSP outage, ticket 42" in main and "End now" in main
    bad = rita.post("/console/silences", data={**form, "hours": "500", "csrf_token": csrf},
                    headers={"accept": "text/html", "referer": "http://testserver/console/alerts"},
                    follow_redirects=False)  # fmt: skip
    assert bad.status_code == 303 and "at+most+168" in bad.headers["location"].replace("%20", "+")
    assert rita.post("/console/silences", data={**form, "dimension": "galaxy", "csrf_token": csrf}).status_code == 422
    with Session(service.engine) as s:
        active = silences(s)
        silence_id = s.exec(select(AlertSilence)).one().id
    assert [(x.matchers, round(x.end - x.start)) for x in active] == [({"dimension": "intent", "value": "payments"},
                                                                        7200)]  # fmt: skip
    assert rita.post(f"/console/silences/{silence_id}/end", data={"csrf_token": csrf}).status_code == 200
    with Session(service.engine) as s:
        assert silences(s) == []
    assert rita.post("/console/silences/99/end", data={"csrf_token": csrf}).status_code == 404


def test_a_database_outage_is_a_503_with_a_message(app_settings) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    down = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2})
    service = ChatService(engine=down, rasa=RasaClient("http://rasa", transport=FakeRasa(down).transport()))
    client = TestClient(create_app(app_settings, service), raise_server_exceptions=False)
    r = client.post("/api/chat/sessions", json={})
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert "send that again" in r.json()["detail"]


def _raw(client: TestClient, path: str, body: str | bytes, who: dict[str, str] | None = None) -> Any:
    return client.post(path, content=body, headers={**(who or {}), "Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "msg"),
    [
        ("/api/chat/messages", '{"text": 1e400}', "Input should be a valid string"),
        ("/api/chat/messages", '{"text": -1e400, "payload": 1e400}', "Input should be a valid string"),
        ("/api/chat/messages", '{"text": "a\\ud800b"}', "text is not valid Unicode"),
        ("/api/chat/messages", '{"text": "hi", "payload": "/greet\\udfff"}', "payload is not valid Unicode"),
        ("/api/chat/sessions", '{"customer_id": 1e400}', "Input should be a valid string"),
        ("/api/chat/sessions", '{"customer_id": "a\\ud800b"}', "customer_id is not valid Unicode"),
        ("/api/chat/sessions", '{"customer_id": "c1", "signature": "\\ud800"}', "signature is not valid Unicode"),
    ],
)
def test_out_of_range_numbers_and_lone_surrogates_are_422_without_the_input(  # type: ignore[no-untyped-def]
    gateway, caplog: pytest.LogCaptureFixture, path: str, body: str, msg: str
) -> None:
    client, fake, _ = gateway
    who = _customer(client)
    with caplog.at_level("INFO"):
        r = _raw(client, path, body, who)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert msg in [d["msg"] for d in detail] and all(set(d) == {"loc", "msg", "type"} for d in detail)
    assert "inf" not in r.text.lower() and "ud800" not in r.text.lower()  # the input is not echoed
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert path in logged and "1e400" not in logged and "\ud800" not in logged  # path and types, never the body
    assert fake.received == []


@pytest.mark.parametrize(
    "message",
    [
        {"text": "x", "payload": '/faq_feedback{"a": ' + "[" * 33 + "]" * 33 + "}"},
        {"text": "x", "payload": '/faq_feedback{"a": ' + "[" * 990 + "]" * 990 + "}"},  # 2000 characters: fits
        {"text": '/faq_feedback{"a": ' + "{" * 40 + "}" * 40 + "}"},  # typed text that Rasa reads as a payload
    ],
)
def test_a_payload_nested_too_deep_is_refused_before_rasa(gateway, message: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    client, fake, _ = gateway
    who = _customer(client)
    r = client.post("/api/chat/messages", json=message, headers=who)
    assert r.status_code == 422, r.text
    assert "the payload's JSON nests deeper than 32 levels" in [d["msg"] for d in r.json()["detail"]]
    assert fake.received == []  # the NLU service's json.loads would hit the recursion limit at ~990 levels
    with Session(get_engine()) as s:
        assert s.exec(select(ChatMessage)).all() == []


def test_the_5000_deep_payload_and_body_are_422_and_shallow_json_passes(gateway) -> None:  # type: ignore[no-untyped-def]
    client, fake, _ = gateway
    who = _customer(client)
    deep = "[" * 5000 + "]" * 5000
    r = client.post("/api/chat/messages", json={"text": "x", "payload": '/faq_feedback{"a": ' + deep + "}"},
                    headers=who)  # fmt: skip
    assert r.status_code == 422 and r.json()["detail"]  # longer than a payload may be
    r = _raw(client, "/api/chat/messages", '{"text": ' + deep + "}", who)
    assert r.status_code == 422 and r.json() == {"detail": "the JSON body nests deeper than 32 levels"}
    r = _raw(client, "/api/chat/sessions", '{"customer_id": ' + "[" * 40 + "]" * 40 + "}")
    assert r.status_code == 422 and "deeper than 32" in r.json()["detail"]
    payload = '/faq_feedback{"a": ' + "[" * 31 + "]" * 31 + "}"  # 32 levels with the object: allowed
    assert _say(client, who, "x", payload)[0]["text"] == "x" and fake.received[-1][1] == payload


def test_only_the_claiming_agent_shows_as_typing(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 8: any agent could show "agent typing" in any conversation."""
    client, _, service = gateway
    who = _customer(client)
    _say(client, who, "agent")
    hid = status_handoff_id(service)
    with Session(service.engine) as s:
        conversation_id = s.get(Handoff, hid).conversation_id  # type: ignore[union-attr]
    ann, ann_csrf = _staff(client.app, "ann")
    bob, bob_csrf = _staff(client.app, "bob")
    typing = f"/console/conversations/{conversation_id}/typing"
    assert ann.post(typing, headers={"X-CSRF-Token": ann_csrf}).status_code == 403  # queued: nobody answers yet
    ann.post(f"/console/handoffs/{hid}/claim", data={"csrf_token": ann_csrf})
    assert bob.post(typing, headers={"X-CSRF-Token": bob_csrf}).status_code == 403  # not bob's
    assert bob.post("/console/conversations/web-unknown/typing", headers={"X-CSRF-Token": bob_csrf}).status_code == 403
    assert client.get("/api/chat/messages", headers=who).json()["agent_typing"] is False
    assert ann.post(typing, headers={"X-CSRF-Token": ann_csrf}).status_code == 204


def test_a_customer_id_with_a_trailing_newline_is_refused(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 8: "cust0001\\n" was accepted as a customer different from cust0001."""
    client, _, _ = gateway
    for bad in ("cust0001\n", "cust0001\r\n", " cust0001", "cust\x000001"):
        assert client.post("/api/chat/sessions", json={"customer_id": bad}).status_code == 422, repr(bad)


def test_typed_commands_reach_rasa_as_text_and_the_metadata_says_who_is_verified(gateway) -> None:  # type: ignore[no-untyped-def]
    """A typed "/restart" or "/csat{...}" is text, not an intent; a signed customer id is marked verified."""
    client, fake, service = gateway
    who = _customer(client, customer_id="cust0001")
    _say(client, who, '/csat{"rating":"1"}')
    assert fake.received[-1][1] == 'csat{"rating":"1"}'
    service.identity_secret = "shop-secret"
    sig = hmac.new(b"shop-secret", b"cust0002", hashlib.sha256).hexdigest()
    signed = _customer(client, customer_id="cust0002", signature=sig)
    _say(client, signed, "my order 100236, email ben@example.com")
    meta = fake.received[-1][2]
    assert meta["customer_verified"] is True and meta["customer_id"] == "cust0002"
    assert len(meta["proof"]["email"]) == 1 and "ben@example.com" not in json.dumps(meta)
    assert "ben@example.com" not in fake.received[-1][1]  # masked before Rasa


def test_agent_replies_are_masked_before_they_are_stored(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 5: agents' replies were stored unmasked."""
    client, _, service = gateway
    _say(client, _customer(client), "agent")
    hid = status_handoff_id(service)
    ann, csrf = _staff(client.app, "ann")
    ann.post(f"/console/handoffs/{hid}/claim", data={"csrf_token": csrf})
    ann.post(f"/console/handoffs/{hid}/reply", data={"csrf_token": csrf, "text": "I see card 4111 1111 1111 1111 "
                                                     "on jane.doe@example.com"})  # fmt: skip
    with Session(service.engine) as s:
        stored = s.exec(select(ChatMessage).where(ChatMessage.role == "agent")).one().text
    assert "4111" not in stored and "jane.doe" not in stored and "[card]" in stored and "[email]" in stored


def test_a_card_number_split_over_two_messages_is_masked_in_both(gateway) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 5: "4111 1111" then "1111 1111" reached the transcript and Rasa unmasked."""
    client, fake, service = gateway
    who = _customer(client)
    _say(client, who, "my card is 4111 1111")
    _say(client, who, "1111 1111 and it was charged twice")
    with Session(service.engine) as s:
        stored = [m.text for m in s.exec(select(ChatMessage).where(ChatMessage.role == "customer"))]
    relayed = [text for _, text, _ in fake.received]
    for texts in (stored, relayed):
        assert texts == ["my card is [card]", "[card] and it was charged twice"]


def test_a_request_that_fails_validation_leaves_no_trace_of_its_body_in_the_log(gateway, caplog) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 5: the whole body, unmasked, went into gateway.log with the traceback."""
    import logging

    client, _, _ = gateway
    who = {**_customer(client), "content-type": "application/json"}
    secret = "jane.doe@example.com 4111 1111 1111 1111"
    bodies = [f'{{"text": "{secret}", "payload": 1e400}}', f'{{"text": "{secret}\\ud800"}}',
              f'{{"text": ["{secret}"]}}', f'{{"customer_id": "{secret}"}}']  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        for body in bodies:
            path = "/api/chat/sessions" if "customer_id" in body else "/api/chat/messages"
            r = client.post(path, content=body.encode(), headers=who)
            assert r.status_code == 422 and "jane.doe" not in r.text, body
    logged = "\n".join(f"{rec.getMessage()} {rec.exc_text or ''}" for rec in caplog.records)
    assert "jane.doe" not in logged and "4111" not in logged
