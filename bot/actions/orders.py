"""Order-status lookup, for the conversation's own customer only (core.shop).

``order_status_form`` asks for the order number and, unless the shop signed the customer's
identity, for the order's email address or delivery postcode (``validate_order_status_form``
drops that question for a verified customer). ``action_check_order_status`` then shows the
order only to its owner; every miss gets the same answer, and a conversation that fails the
check too often is told to sign in or ask a person instead (no guessing of order numbers).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot.actions.handoff import message_metadata
from core.db import session_scope
from core.refusals import recent_refusals, refuse
from core.settings import get_settings
from core.shop import Proof, describe_order, normalize_order_id, order_for

log = logging.getLogger(__name__)
PROOF_SLOT = "order_proof"
MAX_FAILED_PROOFS = 5  # per conversation and hour
NOT_AN_ORDER_NUMBER = "That doesn't look like an order number. It's the 6-digit number in your confirmation email."


def verified_customer(tracker: Tracker) -> str | None:
    """The customer id the shop signed for this conversation (the gateway says so), else None."""
    meta = message_metadata(tracker)
    customer = meta.get("customer_id")
    return str(customer) if meta.get("customer_verified") is True and customer else None


class ValidateOrderStatusForm(FormValidationAction):
    """The order form: a valid order number, then (anonymous visitors only) the proof of ownership."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_order_status_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[str]:
        """A verified customer is not asked for an email or postcode."""
        return [s for s in domain_slots if s != PROOF_SLOT] if verified_customer(tracker) else domain_slots

    async def extract_order_proof(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        """The answer to the proof question (whatever it is), or an email given along with the order number."""
        proof = Proof.from_metadata(message_metadata(tracker).get("proof"))
        if tracker.get_slot("requested_slot") == PROOF_SLOT:
            return {PROOF_SLOT: proof.to_metadata()}
        if proof.emails and tracker.get_slot(PROOF_SLOT) is None:  # "order 100234, ana@example.com"
            return {PROOF_SLOT: Proof(emails=proof.emails).to_metadata()}
        return {}

    def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        """Only something shaped like an order number is kept (else the form asks again)."""
        if normalize_order_id(str(value or "")) is None:
            dispatcher.utter_message(text=NOT_AN_ORDER_NUMBER)
            return {"order_id": None}
        return {"order_id": value}


class ActionCheckOrderStatus(Action):
    """Tell the customer where their order is; clears the form's slots for the next question."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_check_order_status"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Look the order up for this customer and answer."""
        done = [SlotSet("order_id", None), SlotSet(PROOF_SLOT, None)]
        raw = str(tracker.get_slot("order_id") or "")
        order_id = normalize_order_id(raw)
        if order_id is None:
            dispatcher.utter_message(text=NOT_AN_ORDER_NUMBER)
            return done
        try:
            with session_scope() as session:
                text = self._answer(session, tracker, order_id)
        except SQLAlchemyError:
            log.exception("order lookup failed")
            text = "I can't reach our order system right now. Please try again in a few minutes."
        dispatcher.utter_message(text=text)
        return done

    @staticmethod
    def _answer(session: Session, tracker: Tracker, order_id: str) -> str:
        customer = verified_customer(tracker)
        conversation = tracker.sender_id
        if customer is None and recent_refusals(session, conversation, "order_proof_failed",
                                                timedelta(hours=1)) >= MAX_FAILED_PROOFS:  # fmt: skip
            return ("For your security I can't look up more orders in this chat. Please sign in to your account "
                    "to see your orders, or type \"agent\" to talk to a person.")  # fmt: skip
        proofs = [Proof.from_metadata(tracker.get_slot(PROOF_SLOT)),
                  Proof.from_metadata(message_metadata(tracker).get("proof"))]  # fmt: skip
        order = order_for(session, order_id, customer_id=customer, proofs=proofs, key=get_settings().rasa_token)
        if order is not None:
            return describe_order(order)
        if customer is not None:
            return (f"I couldn't find order {order_id} in your account. Could you check the number in your "
                    "confirmation email?")  # fmt: skip
        refuse(session, "order_proof_failed", conversation)
        return (f"I couldn't find an order {order_id} with that email address or postcode. Please check both "
                "(they are in your confirmation email), or type \"agent\" to talk to a person.")  # fmt: skip
