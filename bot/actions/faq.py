"""FAQ answers: retrieval with an honest confidence, "did you mean" choices, feedback, next candidate.

The NLU intent helps where it is sure: an informational intent (e.g. ``check_refund_policy``)
picks the best-matching entry among those listed for that intent. Otherwise retrieval alone
decides (answer / suggest top 3 / admit not knowing and offer a person).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from core.db import get_engine, session_scope
from core.settings import get_settings
from nlu.errors import NLUError
from nlu.faq.index import Doc, Hit
from nlu.faq.policy import Decision
from nlu.faq.service import FaqService, create_service
from nlu.faq.store import record_feedback

log = logging.getLogger(__name__)
MAX_MISSES = 2  # "didn't help" this many times in a row → a person
MAX_UNKNOWN = 2  # "I don't know" this many times in a row → a person
FEEDBACK_BUTTONS = [
    {"title": "👍 That helped", "payload": '/faq_feedback{"helpful":"yes"}'},
    {"title": "👎 That didn't help", "payload": '/faq_feedback{"helpful":"no"}'},
]
UNSURE_BUTTONS = [{"title": "Talk to a person", "payload": "/contact_human_agent"}]

_service: FaqService | None = None
_service_lock = threading.Lock()


def get_faq_service() -> FaqService:
    """The process-wide FAQ service, built on first use (embedder load takes a few seconds)."""
    global _service
    with _service_lock:
        if _service is None:
            s = get_settings()
            _service = create_service(
                get_engine(),
                var_dir=s.var_dir,
                embedder_path=Path(s.faq_embedder) if s.faq_embedder else None,
                reload_seconds=s.faq_reload_seconds,
            )
        return _service


def set_faq_service(service: FaqService | None) -> None:
    """Use ``service`` (tests, or a pre-built one); None rebuilds on next use."""
    global _service
    _service = service


def choose_payload(entry_id: str) -> str:
    """Button payload that answers one entry."""
    return "/faq_choose" + json.dumps({"faq_id": entry_id}, separators=(",", ":"))


def _entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return None if value is None else str(value)


def _answer(dispatcher: CollectingDispatcher, doc: Doc, intro: str = "") -> None:
    link = f"\nMore: {doc.links[0]}" if doc.links else ""
    dispatcher.utter_message(
        text=f"{intro}{doc.answer}{link}\n(From our FAQ: “{doc.question}”)", buttons=FEEDBACK_BUTTONS
    )


def _answer_events(doc: Doc, rest: list[Hit], query: str, misses: float = 0.0) -> list[dict[str, Any]]:
    return [
        SlotSet("faq_entry", doc.id),
        SlotSet("faq_candidates", [h.doc.id for h in rest if h.doc.id != doc.id][:3]),
        SlotSet("faq_query", query),
        SlotSet("faq_misses", misses),
        SlotSet("unknown_streak", 0.0),
    ]


def _unavailable(dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    dispatcher.utter_message(
        text="I can't look that up right now. Please try again in a minute, or talk to a person.",
        buttons=UNSURE_BUTTONS,
    )
    return []


def agreed(message: dict[str, Any], decision: Decision, min_confidence: float) -> Doc | None:
    """The entry two unsure signals agree on, or None.

    The classifier fell back (its best intent was below the threshold) and retrieval is unsure too
    ("did you mean"). When retrieval's top entry is written for the classifier's best intent, two
    independent readings of the message point at the same answer: give it instead of a choice
    (``min_confidence``: settings.faq_agree_min_confidence).
    """
    if decision.action != "suggest" or not decision.hits:
        return None
    ranking = [r for r in message.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
    if not ranking or float(ranking[0].get("confidence") or 0.0) < min_confidence:
        return None
    top = decision.hits[0].doc
    return top if ranking[0].get("name") in top.intents else None


class ActionAnswerFaq(Action):
    """Answer from the knowledge base, or offer choices, or say it does not know."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_answer_faq"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Pick the answer for the latest message."""
        message = tracker.latest_message or {}
        intent = (message.get("intent") or {}).get("name")
        try:
            service = get_faq_service()
            if intent == "faq_choose" and (chosen := _entity(tracker, "faq_id")):
                doc = service.entry(chosen)
                if doc is not None:
                    _answer(dispatcher, doc)
                    return _answer_events(doc, [], str(tracker.get_slot("faq_query") or ""))
            query = str(message.get("text") or "")
            decision = service.ask(query)
            # A confident retrieval wins; else the NLU's intent picks among the entries written for it.
            confident = decision.action == "answer"
            by_intent = service.best_for_intent(query, intent) if intent and not confident else None
        except (NLUError, SQLAlchemyError, OSError):
            log.exception("FAQ lookup failed")
            return _unavailable(dispatcher)
        # Both unsure: an answer only where the classifier's best intent and retrieval's top entry agree.
        agree = agreed(message, decision, get_settings().faq_agree_min_confidence)
        doc = decision.hits[0].doc if confident else by_intent.doc if by_intent else agree
        if doc is not None:
            _answer(dispatcher, doc)
            return _answer_events(doc, decision.hits, query)
        if decision.action == "suggest":
            dispatcher.utter_message(
                text="I'm not completely sure what you mean. Is it one of these?",
                buttons=[
                    *(
                        {"title": h.doc.question, "payload": f'/faq_choose{{"faq_id":"{h.doc.id}"}}'}
                        for h in decision.hits
                    ),
                    *UNSURE_BUTTONS,
                ],
            )
            return [SlotSet("faq_query", query)]
        streak = float(tracker.get_slot("unknown_streak") or 0.0) + 1
        if streak >= MAX_UNKNOWN:
            dispatcher.utter_message(text="I'm sorry, I can't answer that either. Let me get a colleague for you.")
            return [
                SlotSet("faq_query", query),
                SlotSet("unknown_streak", 0.0),
                FollowupAction("action_request_handoff"),
            ]
        dispatcher.utter_message(
            text="I'm sorry, I don't know the answer to that. You can rephrase it, or I can ask a colleague.",
            buttons=UNSURE_BUTTONS,
        )
        return [SlotSet("faq_query", query), SlotSet("unknown_streak", streak)]


class ActionFaqFeedback(Action):
    """Store the vote; after "didn't help" try the next candidate, and after two misses ask a person."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_faq_feedback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Record and react."""
        entry = tracker.get_slot("faq_entry")
        if not entry:
            dispatcher.utter_message(text="Thanks! Is there anything else I can help you with?")
            return []
        helpful = (_entity(tracker, "helpful") or "").lower() in {"yes", "true", "1"}
        query = str(tracker.get_slot("faq_query") or "")
        try:
            with session_scope() as session:
                record_feedback(session, sender_id=tracker.sender_id, entry_id=str(entry), helpful=helpful, query=query)
        except SQLAlchemyError:
            log.exception("could not store FAQ feedback")  # the conversation goes on without it
        if helpful:
            dispatcher.utter_message(text="Glad that helped! Anything else?")
            return [SlotSet("faq_entry", None), SlotSet("faq_candidates", []), SlotSet("faq_misses", 0.0)]
        misses = float(tracker.get_slot("faq_misses") or 0.0) + 1
        candidates = list(tracker.get_slot("faq_candidates") or [])
        if misses >= MAX_MISSES or not candidates:
            dispatcher.utter_message(text="Sorry that didn't help. Let me get a colleague for you.")
            return [SlotSet("faq_entry", None), SlotSet("faq_misses", 0.0), FollowupAction("action_request_handoff")]
        try:
            doc = get_faq_service().entry(candidates[0])
        except (NLUError, SQLAlchemyError, OSError):
            log.exception("FAQ lookup failed")
            return _unavailable(dispatcher)
        if doc is None:
            return [SlotSet("faq_candidates", candidates[1:]), FollowupAction("action_request_handoff")]
        _answer(dispatcher, doc, intro="Sorry about that. Maybe this helps: ")
        return [
            SlotSet("faq_entry", doc.id),
            SlotSet("faq_candidates", candidates[1:]),
            SlotSet("faq_misses", misses),
        ]
