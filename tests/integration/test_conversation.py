"""The whole path: Rasa REST → our NLU → rules/forms → our action server → database."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlmodel import Session, select

from core.db import make_engine
from core.models import FaqFeedback, Ticket, Turn
from core.stack import start, wait_healthy
from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DBS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


def _turns(stack: Stack, sender: str, n: int, timeout: float = 20) -> list[Turn]:
    """Wait until the worker has copied ``n`` turns of ``sender`` into the turn table."""
    engine = make_engine(stack.settings.app_db_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with Session(engine) as s:
                turns = list(s.exec(select(Turn).where(Turn.sender_id == sender).order_by(Turn.tracker_event_id)))
            if len(turns) >= n or time.monotonic() > deadline:
                return turns
            time.sleep(0.5)
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_multi_turn_conversation_is_answered_and_stored(stack: Stack) -> None:
    sender = f"it-{uuid.uuid4().hex[:8]}"
    assert "store assistant" in stack.texts(sender, "hello")
    reply = stack.texts(sender, "where is my order 100234?")
    assert "100234" in reply and "on its way with UPS" in reply
    assert "What's your order number?" in stack.texts(sender, "can you track my order")
    assert "was delivered" in stack.texts(sender, "it's 100235")
    reply = stack.texts(sender, "I want to talk to a human agent")
    assert "ticket #" in reply and "queue" in reply

    turns = _turns(stack, sender, 5)
    assert [t.intent for t in turns][:3] == ["greet", "track_order", "track_order"]
    assert turns[-1].intent == "contact_human_agent"
    assert all(t.sentiment in {"negative", "neutral", "positive"} and t.confidence for t in turns)
    assert '"order_id"' in turns[1].entities and turns[1].channel == "rest"
    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        ticket = s.exec(select(Ticket).where(Ticket.sender_id == sender)).one()
    engine.dispose()
    assert ticket.status == "queued" and ticket.reason == "explicit_request"


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_bad_input_gets_a_polite_reply_and_is_kept(stack: Stack) -> None:
    sender = f"bad-{uuid.uuid4().hex[:8]}"
    huge = "x" * 100_000
    for message in ["   ", huge, "\x00\x1b[31m", "🙂" * 10, "/track_order{broken"]:
        replies = stack.say(sender, message)
        assert replies and all(r.get("text") for r in replies), message[:20]
    rasa = stack.settings.url(stack.settings.rasa_port) + "/webhooks/rest/webhook"
    assert httpx.post(rasa, content=b"{not json", timeout=30).status_code >= 400
    assert "store assistant" in stack.texts(sender, "hi")  # still alive
    turns = _turns(stack, sender, 6)
    assert any(len(t.text) == 10_000 for t in turns)  # the 100 kB message is stored (truncated copy)


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_nlu_down_gives_fallback_then_recovers(stack: Stack) -> None:
    sender = f"down-{uuid.uuid4().hex[:8]}"
    nlu = stack.services["nlu"]
    assert nlu.proc is not None
    nlu.proc.terminate()
    nlu.proc.wait(timeout=20)
    assert "rephrase" in stack.texts(sender, "hello")
    start(nlu, stack.settings)
    wait_healthy(nlu, 120)
    assert "store assistant" in stack.texts(sender, "hello")


@pytest.mark.parametrize("database_url", DBS[:1], indirect=True)
def test_nlu_rejects_a_wrong_token(stack: Stack) -> None:
    url = stack.settings.url(stack.settings.nlu_port) + "/model/parse"
    assert httpx.post(url, json={"text": "hi", "token": "wrong"}, timeout=10).status_code == 401
    ok = httpx.post(url, json={"text": "hi", "token": "integration-token", "message_id": "x"}, timeout=10)
    assert ok.status_code == 200 and ok.json()["text"] == "hi"


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_faq_answer_feedback_next_candidate_then_a_person(stack: Stack) -> None:
    sender = f"faq-{uuid.uuid4().hex[:8]}"
    first = stack.say(sender, "what is your return policy?")
    assert "within 30 days" in first[0]["text"] and "From our FAQ" in first[0]["text"]
    assert [b["title"] for b in first[0]["buttons"]] == ["👍 That helped", "👎 That didn't help"]
    second = stack.texts(sender, '/faq_feedback{"helpful":"no"}')
    assert second.startswith("Sorry about that. Maybe this helps:")
    third = stack.texts(sender, '/faq_feedback{"helpful":"no"}')
    assert "get a colleague" in third and "ticket #" in third
    other = f"faq2-{uuid.uuid4().hex[:8]}"
    assert "Gift wrap" in stack.texts(other, "is gift wrapping available?")
    assert "Glad" in stack.texts(other, '/faq_feedback{"helpful":"yes"}')
    assert "don't know" in stack.texts(other, "who won the football world cup in 1954")
    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        ticket = s.exec(select(Ticket).where(Ticket.sender_id == sender)).one()
        votes = s.exec(select(FaqFeedback).where(FaqFeedback.sender_id.in_([sender, other]))).all()  # type: ignore[attr-defined]
    engine.dispose()
    assert ticket.reason == "faq_not_helpful"
    assert sorted(v.helpful for v in votes) == [False, False, True]


def _ask(stack: Stack, sender: str, text: str, customer: str) -> list[dict]:  # type: ignore[type-arg]
    url = stack.settings.url(stack.settings.rasa_port) + "/webhooks/rest/webhook"
    body = {"sender": sender, "message": text, "metadata": {"customer_id": customer}}
    r = httpx.post(url, json=body, timeout=60)
    r.raise_for_status()
    return r.json()


def _texts(replies: list[dict]) -> str:  # type: ignore[type-arg]
    return "\n".join(m.get("text", "") for m in replies)


def _cards(replies: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    """Rasa's REST channel sends a card as two messages: text with buttons, then the product_card payload."""
    return [
        {"custom": m["custom"], "text": replies[i - 1].get("text", ""), "buttons": replies[i - 1].get("buttons", [])}
        for i, m in enumerate(replies)
        if (m.get("custom") or {}).get("type") == "product_card" and i > 0
    ]


@pytest.mark.parametrize("database_url", DBS, indirect=True)
def test_recommendation_cards_clicks_and_dismissals(stack: Stack) -> None:
    from core.models import BehaviourEvent, RecImpression

    one, two = f"rec-{uuid.uuid4().hex[:8]}", f"rec-{uuid.uuid4().hex[:8]}"
    cards = _cards(_ask(stack, one, "anything for me?", "cust0001"))
    other = _cards(_ask(stack, two, "anything for me?", "cust0002"))
    assert len(cards) == 3 and len(other) == 3
    assert [c["custom"]["product_id"] for c in cards] != [c["custom"]["product_id"] for c in other]
    assert all(c["custom"]["reason"] and c["text"].count("$") == 1 for c in cards)
    first, second = cards[0], cards[1]
    buttons = {b["title"]: b["payload"] for b in first["buttons"]}
    assert set(buttons) == {"More like this", "Not interested", "Add to cart"}
    assert "Added to your cart" in "\n".join(
        m.get("text", "") for m in _ask(stack, one, buttons["Add to cart"], "cust0001")
    )
    dismiss = {b["title"]: b["payload"] for b in second["buttons"]}["Not interested"]
    assert "won't suggest" in "\n".join(m.get("text", "") for m in _ask(stack, one, dismiss, "cust0001"))
    more = _cards(_ask(stack, one, buttons["More like this"], "cust0001"))
    assert more and all(c["custom"]["reason"].startswith("Similar to") for c in more)
    again = _cards(_ask(stack, one, "what would you recommend?", "cust0001"))
    assert second["custom"]["product_id"] not in {c["custom"]["product_id"] for c in again}
    cheap = _cards(_ask(stack, one, "show me kitchen stuff under $30", "cust0001"))
    assert cheap and all(c["custom"]["price"] <= 30 and c["custom"]["category"].startswith("Kitchen") for c in cheap)

    engine = make_engine(stack.settings.app_db_url)
    with Session(engine) as s:
        shown = s.exec(select(RecImpression).where(RecImpression.customer_id == "cust0001")).all()
        events = s.exec(select(BehaviourEvent).where(BehaviourEvent.source == "chat")).all()
    engine.dispose()
    assert len(shown) >= 3 + len(more) + len(again) and {i.position for i in shown} >= {1, 2, 3}
    kinds = {(e.customer_id, e.product_id, e.kind) for e in events}
    pid = first["custom"]["product_id"]
    assert {("cust0001", pid, "rec_click"), ("cust0001", pid, "cart")} <= kinds
    assert ("cust0001", second["custom"]["product_id"], "rec_dismiss") in kinds
    assert all(e.session_id for e in events)  # each click carries the request id of its impression
