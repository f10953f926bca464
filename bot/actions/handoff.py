"""Handoff to a human: the request is stored as a ticket in the queue."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from core.db import session_scope
from core.shop import open_ticket, queue_position

log = logging.getLogger(__name__)
REASONS = {"faq_feedback": "faq_not_helpful", "contact_human_agent": "explicit_request"}  # by the latest intent


class ActionRequestHandoff(Action):
    """Open (or reuse) a handoff ticket and tell the customer what happens next."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_request_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue the ticket."""
        text = str(tracker.latest_message.get("text") or "")
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = REASONS.get(str(intent), "explicit_request")
        try:
            with session_scope() as session:
                ticket = open_ticket(session, sender_id=tracker.sender_id, reason=reason, last_message=text)
                ticket_id, position = ticket.id, queue_position(session, ticket)
        except SQLAlchemyError:
            log.exception("could not open a handoff ticket")
            dispatcher.utter_message(response="utter_handoff_unavailable")
            return []
        dispatcher.utter_message(
            text=f"I've asked a colleague from our support team to join (ticket #{ticket_id}, "
            f"you're number {position} in the queue). They'll reply right here."
        )
        return []
