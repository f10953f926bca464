"""Order-status lookup."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from core.db import session_scope
from core.shop import describe_order, find_order, normalize_order_id

log = logging.getLogger(__name__)


class ActionCheckOrderStatus(Action):
    """Tell the customer where their order is; clears ``order_id`` for the next question."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_check_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Look the order up and answer."""
        raw = str(tracker.get_slot("order_id") or "")
        if normalize_order_id(raw) is None:
            dispatcher.utter_message(
                text="That doesn't look like an order number. It's the 6-digit number in your confirmation email."
            )
            return [SlotSet("order_id", None)]
        try:
            with session_scope() as session:
                order = find_order(session, raw)
                text = describe_order(order) if order else None
        except SQLAlchemyError:
            log.exception("order lookup failed")
            dispatcher.utter_message(
                text="I can't reach our order system right now. Please try again in a few minutes."
            )
            return [SlotSet("order_id", None)]
        if text is None:
            text = (
                f"I couldn't find an order with the number {normalize_order_id(raw)}. "
                "Could you check the number in your confirmation email?"
            )
        dispatcher.utter_message(text=text)
        return [SlotSet("order_id", None)]
