"""FAQ actions: answer, intent route, did-you-mean, unsure, feedback, next candidate, handoff, outages."""

from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlmodel import Session, select

from bot.actions.faq import ActionAnswerFaq, ActionFaqFeedback, choose_payload, set_faq_service
from core.db import get_engine
from core.models import FaqFeedback
from nlu.faq import store
from nlu.faq.kb import load_kb
from nlu.faq.policy import Thresholds
from nlu.faq.service import FaqService


def _tracker(text: str, intent: str = "nlu_fallback", slots: dict[str, Any] | None = None, **ents: str) -> Tracker:
    entities = [{"entity": k, "value": v} for k, v in ents.items()]
    return Tracker.from_dict(
        {
            "sender_id": "cust-1",
            "slots": slots or {},
            "latest_message": {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def _slots(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


@pytest.fixture()
def faq(app_settings: Any, minilm_embedder: Any):  # type: ignore[no-untyped-def]
    engine = get_engine()
    with Session(engine) as s:
        store.import_kb(s, load_kb(Path("bot/kb/faq.yml")), minilm_embedder, progress=False)
        s.commit()
    service = FaqService(engine, minilm_embedder, Thresholds(answer=0.62, suggest=0.45), reload_seconds=0)
    set_faq_service(service)
    yield service
    set_faq_service(None)


def _run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    d = CollectingDispatcher()
    return action.run(d, tracker, {}), d.messages


def test_confident_answer_cites_the_entry_and_offers_feedback(faq: FaqService) -> None:
    events, messages = _run(ActionAnswerFaq(), _tracker("What is your return policy?"))
    assert "within 30 days" in messages[0]["text"] and "From our FAQ" in messages[0]["text"]
    assert "https://example-store.com/help/returns" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        '/faq_feedback{"helpful":"yes"}',
        '/faq_feedback{"helpful":"no"}',
    ]
    slots = _slots(events)
    assert slots["faq_entry"] == "return-policy" and len(slots["faq_candidates"]) == 3 and slots["faq_misses"] == 0


def test_intent_picks_among_its_entries_when_retrieval_is_unsure(faq: FaqService) -> None:
    events, messages = _run(ActionAnswerFaq(), _tracker("help me with that bloody thing", intent="track_refund"))
    assert _slots(events)["faq_entry"] == "refund-status" and "Refunds are listed" in messages[0]["text"]


def test_unsure_admits_it_and_offers_a_person(faq: FaqService) -> None:
    events, messages = _run(ActionAnswerFaq(), _tracker("what's the capital of Mongolia"))
    assert "don't know" in messages[0]["text"]
    assert messages[0]["buttons"] == [{"title": "Talk to a person", "payload": "/contact_human_agent"}]
    assert "faq_entry" not in _slots(events)


def test_second_unknown_in_a_row_hands_off(faq: FaqService) -> None:
    events, messages = _run(ActionAnswerFaq(), _tracker("what's the capital of Mongolia"))
    assert "don't know" in messages[0]["text"] and _slots(events)["unknown_streak"] == 1.0
    events, messages = _run(ActionAnswerFaq(), _tracker("how tall is Everest", slots={"unknown_streak": 1.0}))
    assert "get a colleague" in messages[0]["text"] and _slots(events)["unknown_streak"] == 0.0
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "action_request_handoff"}
    events, _ = _run(ActionAnswerFaq(), _tracker("how do I return an item", "get_refund", {"unknown_streak": 1.0}))
    assert _slots(events)["unknown_streak"] == 0.0  # an answer ends the streak


def test_did_you_mean_buttons_then_choice(faq: FaqService) -> None:
    faq.thresholds = Thresholds(answer=0.99, suggest=0.2)
    events, messages = _run(ActionAnswerFaq(), _tracker("returns"))
    assert messages[0]["text"].startswith("I'm not completely sure")
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert len(payloads) == 4 and payloads[0].startswith("/faq_choose") and payloads[-1] == "/contact_human_agent"
    events, messages = _run(ActionAnswerFaq(), _tracker(payloads[0], "faq_choose", faq_id="exchange"))
    assert _slots(events)["faq_entry"] == "exchange" and "size or" in messages[0]["text"]
    assert choose_payload("a-b") == '/faq_choose{"faq_id":"a-b"}'


def test_feedback_is_stored_and_not_helpful_moves_on_then_hands_off(faq: FaqService) -> None:
    slots = {"faq_entry": "return-policy", "faq_candidates": ["how-to-return", "exchange"], "faq_query": "q"}
    events, messages = _run(ActionFaqFeedback(), _tracker("/faq_feedback", "faq_feedback", slots, helpful="no"))
    assert messages[0]["text"].startswith("Sorry about that. Maybe this helps:")
    assert _slots(events) == {"faq_entry": "how-to-return", "faq_candidates": ["exchange"], "faq_misses": 1.0}
    slots = {**slots, **_slots(events)}
    events, messages = _run(ActionFaqFeedback(), _tracker("/faq_feedback", "faq_feedback", slots, helpful="no"))
    assert "get a colleague" in messages[0]["text"]
    assert events[-1] == {"event": "followup", "timestamp": None, "name": "action_request_handoff"}
    events, messages = _run(
        ActionFaqFeedback(), _tracker("/x", "faq_feedback", {"faq_entry": "exchange"}, helpful="yes")
    )
    assert messages[0]["text"].startswith("Glad")
    with Session(get_engine()) as s:
        votes = s.exec(select(FaqFeedback).order_by(FaqFeedback.id)).all()  # type: ignore[arg-type]
    assert [(v.entry_id, v.helpful) for v in votes] == [
        ("return-policy", False),
        ("how-to-return", False),
        ("exchange", True),
    ]


def test_outage_degrades_politely(faq: FaqService) -> None:
    faq.engine.dispose()
    faq.engine = get_engine("sqlite:////nonexistent/dir/app.db")
    faq._index = None
    events, messages = _run(ActionAnswerFaq(), _tracker("What is your return policy?"))
    assert events == [] and "can't look that up right now" in messages[0]["text"]


def test_two_unsure_readings_that_agree_give_the_answer() -> None:
    from bot.actions.faq import agreed
    from nlu.faq.index import Doc, Hit
    from nlu.faq.policy import Decision

    policy = Doc("return-policy", "What is your return policy?", "30 days.", intents=("check_refund_policy",))
    other = Doc("exchange", "Can I exchange?", "Yes.")
    unsure = Decision("suggest", [Hit(policy, 0.5, 0.5), Hit(other, 0.4, 0.4)])
    message = {"intent_ranking": [{"name": "nlu_fallback", "confidence": 0.6},
                                  {"name": "check_refund_policy", "confidence": 0.6}]}  # fmt: skip
    assert agreed(message, unsure, 0.3) is policy
    assert agreed(message, unsure, 0.7) is None  # the classifier too unsure to count
    assert agreed(message, Decision("suggest", [Hit(other, 0.5, 0.5)]), 0.3) is None  # they disagree
    assert agreed(message, Decision("unsure", unsure.hits), 0.3) is None  # retrieval has nothing to offer
    assert agreed({}, unsure, 0.3) is None
