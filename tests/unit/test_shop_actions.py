"""Order lookup and handoff: services and rasa-sdk actions (exact events and messages)."""

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlmodel import Session, select

from bot.actions import ActionCheckOrderStatus, ActionRecordCsat, ActionRequestHandoff, ValidateOrderStatusForm
from core.db import get_engine
from core.demo import seed
from core.models import Handoff, HandoffTransition
from core.refusals import refusal_counts
from core.settings import get_settings
from core.shop import normalize_order_id, proof_digests


def _tracker(
    slots: dict[str, Any] | None = None, text: str = "", sender: str = "u1", metadata: dict[str, Any] | None = None
) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots or {},
            "latest_message": {"text": text, "intent": {"name": "x"}, "entities": [], "metadata": metadata or {}},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def _as(customer: str | None, verified: bool, raw_text: str = "") -> dict[str, Any]:
    """Message metadata as the gateway sends it (proof digests keyed with the settings' RASA_TOKEN)."""
    key = get_settings().rasa_token
    return {"customer_id": customer, "customer_verified": verified, "proof": proof_digests(raw_text, key).to_metadata()}


def _ask(order_id: str, metadata: dict[str, Any], sender: str = "u1", proof: Any = None) -> str:
    d = CollectingDispatcher()
    events = ActionCheckOrderStatus().run(d, _tracker({"order_id": order_id, "order_proof": proof}, sender=sender,
                                                      metadata=metadata), {})  # fmt: skip
    assert events == CLEARED
    return str(d.messages[0]["text"])


CLEARED = [
    {"event": "slot", "timestamp": None, "name": "order_id", "value": None},
    {"event": "slot", "timestamp": None, "name": "order_proof", "value": None},
]


@pytest.mark.parametrize(("raw", "want"), [("100234", "100234"), ("#00100234", "100234"), ("abc", None), ("", None)])
def test_normalize_order_id(raw: str, want: str | None) -> None:
    assert normalize_order_id(raw) == want


def test_a_signed_in_customer_sees_their_own_order(app_settings) -> None:  # type: ignore[no-untyped-def]
    seed()
    text = _ask("#100234", _as("c-ana", verified=True))
    assert "100234" in text and "on its way with UPS" in text


def test_nobody_reads_another_customers_order(app_settings) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 1: the order was shown to any session that named its number."""
    seed()
    for metadata in (_as("c-ana", verified=True), _as("c-ana", verified=False), _as(None, verified=False), {}):
        text = _ask("100236", metadata)  # Ben's espresso machine
        assert "Espresso" not in text and "100236" in text and "couldn't find" in text, metadata
    # an unsigned claim to be Ben is no proof either (demo mode lets any page name any customer)
    assert "Espresso" not in _ask("100236", _as("c-ben", verified=False))


def test_a_miss_never_tells_whether_someone_elses_order_exists(app_settings) -> None:  # type: ignore[no-untyped-def]
    seed()
    anonymous = _as(None, False, "ben@example.org")
    assert _ask("100236", anonymous).replace("100236", "N") == _ask("999999", anonymous).replace("999999", "N")
    signed = _as("c-ana", verified=True)
    assert _ask("100236", signed).replace("100236", "N") == _ask("999999", signed).replace("999999", "N")


def test_an_anonymous_visitor_proves_ownership_with_email_or_postcode(app_settings) -> None:  # type: ignore[no-untyped-def]
    seed()
    by_email = _ask("100236", _as(None, False, "it's BEN@example.com thanks"))
    by_postcode = _ask("100234", _as(None, False, "sw1a 1aa"))
    assert "Espresso machine" in by_email and "Trail running shoes" in by_postcode
    key = get_settings().rasa_token
    earlier = proof_digests("10115", key).to_metadata()  # given in answer to the form's question
    assert "Coffee grinder" in _ask("100237", _as(None, False, "thanks"), proof=earlier)
    assert "Espresso" not in _ask("100236", _as(None, False, "ana@example.com"))  # Ana's email, Ben's order
    assert "Espresso" not in _ask("100236", _as(None, False, "75002"))  # Cho's postcode


def test_guessing_is_stopped_after_five_failed_proofs(app_settings) -> None:  # type: ignore[no-untyped-def]
    seed()
    for guess in ("10001", "10002", "10003", "10004", "10005"):
        assert "couldn't find" in _ask("100236", _as(None, False, guess), sender="guesser")
    text = _ask("100236", _as(None, False, "ben@example.com"), sender="guesser")  # even the right one now
    assert "can't look up more orders" in text and "Espresso" not in text
    assert "Espresso" in _ask("100236", _as(None, False, "ben@example.com"), sender="someone-else")
    with Session(get_engine()) as s:
        assert refusal_counts(s)["order_proof_failed"] == 5


def test_the_form_asks_anonymous_visitors_for_proof_only(app_settings) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    form = ValidateOrderStatusForm()
    domain = {"slots": {"order_id": {"mappings": [{"type": "from_entity", "entity": "order_id"}]},
                        "order_proof": {"mappings": [{"type": "custom"}]}},
              "forms": {"order_status_form": {"required_slots": ["order_id", "order_proof"]}}}  # fmt: skip
    d = CollectingDispatcher()
    anonymous = _tracker(metadata=_as(None, False))
    signed = _tracker(metadata=_as("c-ana", True))
    run = asyncio.run
    assert run(form.required_slots(["order_id", "order_proof"], d, anonymous, domain)) == ["order_id", "order_proof"]
    assert run(form.required_slots(["order_id", "order_proof"], d, signed, domain)) == ["order_id"]
    answer = _tracker({"requested_slot": "order_proof"}, metadata=_as(None, False, "ben@example.com"))
    extracted = run(form.extract_order_proof(d, answer, domain))["order_proof"]
    assert len(extracted["email"]) == 1 and "ben@example.com" not in str(extracted)  # digests, no clear text
    first = _tracker(metadata=_as(None, False, "where is order 100236"))  # the order number is no proof
    assert run(form.extract_order_proof(d, first, domain)) == {}
    assert form.validate_order_id("12ab", d, first, domain) == {"order_id": None}
    assert "doesn't look like an order number" in d.messages[-1]["text"]


def test_order_status_invalid(app_settings) -> None:  # type: ignore[no-untyped-def]
    assert "doesn't look like an order number" in _ask("not-a-number", _as(None, False))


def test_order_status_database_down(app_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", "sqlite:////nonexistent-dir/x/app.db")
    from core import db, settings

    settings.get_settings.cache_clear()
    db._engines.clear()
    monkeypatch.setattr(db, "make_engine", lambda url: db.create_engine(url))  # no mkdir: the DB is unreachable
    assert "can't reach our order system" in _ask("100234", {})


def test_handoff_opens_one_per_conversation_and_pauses_the_bot(app_settings) -> None:  # type: ignore[no-untyped-def]
    d = CollectingDispatcher()
    for _ in range(2):
        events = ActionRequestHandoff().run(d, _tracker(text="human please", sender="cust-9"), {})
        assert events == [{"event": "pause", "timestamp": None}]
    with Session(get_engine()) as s:
        handoffs = s.exec(select(Handoff)).all()
        transitions = s.exec(select(HandoffTransition)).all()
    assert len(handoffs) == 1 and handoffs[0].conversation_id == "cust-9" and handoffs[0].reason == "explicit_request"
    assert handoffs[0].last_message == "human please" and handoffs[0].state == "queued"
    assert [(t.from_state, t.to_state, t.actor) for t in transitions] == [("bot", "queued", "bot")]
    assert f"request #{handoffs[0].id}" in d.messages[0]["text"] and "number 1 in the queue" in d.messages[0]["text"]
    assert d.messages[0]["buttons"] == [{"title": "Cancel, keep chatting with the bot", "payload": "/handoff_cancel"}]


def test_seed_is_idempotent(app_settings) -> None:  # type: ignore[no-untyped-def]
    assert seed() == 9
    assert seed() == 0


def _rate(sender: str, rating: str) -> str:
    d = CollectingDispatcher()
    tracker = Tracker.from_dict({"sender_id": sender, "slots": {}, "events": [], "paused": False,
                                 "followup_action": None, "active_loop": {}, "latest_action_name": "action_listen",
                                 "latest_message": {"text": "", "intent": {"name": "csat"},
                                                    "entities": [{"entity": "rating", "value": rating}]}})  # fmt: skip
    assert ActionRecordCsat().run(d, tracker, {}) == []
    return str(d.messages[0]["response"])


def test_a_rating_counts_once_and_only_after_a_resolved_handoff(app_settings) -> None:  # type: ignore[no-untyped-def]
    """Issue 18, finding 4: /csat{"rating":"1"} with no handoff was stored and counted in the dashboard."""
    from core.handoff import open_handoff, transition
    from core.models import CsatRating, RefusedInput

    assert _rate("nobody-helped", "1") == "utter_csat_not_due"  # no handoff at all
    with Session(get_engine()) as s:
        handoff = open_handoff(s, conversation_id="helped", reason="explicit_request", channel="web", last_message="")
        s.commit()
        hid = handoff.id
        assert hid is not None
        transition(s, hid, "claim", actor="sam")
        s.commit()
    assert _rate("helped", "2") == "utter_csat_not_due"  # claimed, not resolved yet
    with Session(get_engine()) as s:
        transition(s, hid, "resolve", actor="sam")
        s.commit()
    assert _rate("helped", "5") == "utter_csat_thanks"
    assert _rate("helped", "1") == "utter_csat_not_due"  # once
    with Session(get_engine()) as s:
        ratings = [(r.conversation_id, r.handoff_id, r.rating) for r in s.exec(select(CsatRating))]
        refused = [(r.kind, r.conversation_id) for r in s.exec(select(RefusedInput))]
    assert ratings == [("helped", hid, 5)]
    assert refused == [("csat_not_due", "nobody-helped"), ("csat_not_due", "helped"), ("csat_not_due", "helped")]
