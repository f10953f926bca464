"""Handoff to a person, and the customer's rating afterwards.

``action_request_handoff`` queues the conversation (core.handoff) and pauses the bot: while a
person handles it, the channels gateway relays messages and Rasa only records them. When the
agent resolves, the gateway resumes Rasa and triggers ``EXTERNAL_handoff_resolved``, whose rule
asks for a rating that ``action_record_csat`` stores.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from core.db import session_scope
from core.handoff import CANCEL_BUTTON, open_handoff, queue_position, queued_notice
from core.models import CsatRating, Handoff
from core.refusals import refuse

log = logging.getLogger(__name__)
# Why the customer is handed over, by the latest intent (a FAQ "no answer" streak arrives as nlu_fallback).
REASONS = {
    "faq_feedback": "faq_not_helpful",
    "contact_human_agent": "explicit_request",
    "nlu_fallback": "repeated_fallback",
}


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    """The metadata the gateway sent with the latest message (channel, customer, verification, proof)."""
    meta = (tracker.latest_message or {}).get("metadata")
    return meta if isinstance(meta, dict) else {}


def channel_of(tracker: Tracker) -> str:
    """The customer's channel as the gateway reports it in the message metadata (else Rasa's input channel)."""
    return str(message_metadata(tracker).get("channel") or tracker.get_latest_input_channel() or "rest")[:32]


class ActionRequestHandoff(Action):
    """Queue the conversation for a person, tell the customer, and pause the bot."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_request_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue the handoff."""
        text = str(tracker.latest_message.get("text") or "")
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = REASONS.get(str(intent), "explicit_request")
        try:
            with session_scope() as session:
                handoff = open_handoff(
                    session, conversation_id=tracker.sender_id, reason=reason, channel=channel_of(tracker),
                    last_message=text,
                )  # fmt: skip
                handoff_id, position = handoff.id, queue_position(session, handoff)
        except SQLAlchemyError:
            log.exception("could not open a handoff")
            dispatcher.utter_message(response="utter_handoff_unavailable")
            return []
        dispatcher.utter_message(text=queued_notice(handoff_id, position), buttons=[CANCEL_BUTTON])
        return [ConversationPaused()]


class ActionRecordCsat(Action):
    """Store the customer's 1-5 rating of the help they got: once, for the conversation's latest handoff, and
    only when a person resolved it (a rating typed or replayed at any other time is refused and counted)."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_csat"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Validate and store the rating."""
        raw = next(tracker.get_latest_entity_values("rating"), None)
        try:
            rating = int(str(raw))
        except ValueError:
            rating = 0
        if not 1 <= rating <= 5:
            dispatcher.utter_message(response="utter_ask_csat")
            return []
        response = "utter_csat_thanks"  # also when the database is down: the customer did rate
        try:
            with session_scope() as session:
                due = rating_due(session, tracker.sender_id)
                if due is None:
                    refuse(session, "csat_not_due", tracker.sender_id)
                    response = "utter_csat_not_due"
                else:
                    session.add(CsatRating(conversation_id=tracker.sender_id, handoff_id=due, rating=rating))
        except SQLAlchemyError:
            log.exception("could not store a CSAT rating")
        dispatcher.utter_message(response=response)
        return []


def rating_due(session: Session, conversation_id: str) -> int | None:
    """The conversation's latest handoff if a person resolved it and it has no rating yet, else None."""
    latest = session.exec(
        select(Handoff).where(Handoff.conversation_id == conversation_id).order_by(col(Handoff.id).desc())
    ).first()
    if latest is None or latest.state != "resolved" or latest.id is None:
        return None
    rated = session.exec(select(CsatRating.id).where(CsatRating.handoff_id == latest.id)).first()
    return None if rated is not None else latest.id
