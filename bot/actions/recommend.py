"""Product recommendations in the chat: cards with a reason, and what the customer does with them.

``action_recommend_products`` shows up to three cards (name, price, link, reason) with "More
like this", "Not interested" and "Add to cart" buttons, and logs each card as an impression.
``action_recommendation_feedback`` records the button: a click (more like this, add to cart),
a cart event, or a dismissal that the recommender never shows again.

The customer is the conversation's sender id, or ``customer_id`` from the channel's metadata.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from bot.actions.handoff import channel_of, message_metadata
from core.db import get_engine, session_scope
from core.models import RecImpression
from core.refusals import refuse
from core.settings import get_settings
from recommender.errors import RecommenderError
from recommender.events import record_event
from recommender.rules import Constraints
from recommender.service import Recommendation, RecommenderService

log = logging.getLogger(__name__)
CARDS = 3
_service: RecommenderService | None = None
_lock = threading.Lock()


def get_recommender() -> RecommenderService:
    """The process-wide recommender, built on first use."""
    global _service
    with _lock:
        if _service is None:
            import torch

            from nlu.faq.embedder import load_embedder

            s = get_settings()
            if s.rec_threads > 0:
                torch.set_num_threads(s.rec_threads)
            _service = RecommenderService(
                engine=get_engine(), model_root=s.rec_model_dir, encoder_factory=load_embedder,
                reload_seconds=s.rec_reload_seconds,
            )  # fmt: skip
        return _service


def set_recommender(service: RecommenderService | None) -> None:
    """Use ``service`` (tests); None rebuilds on next use."""
    global _service
    _service = service


MAX_PRICE = 1e7  # a price cap at or above this is no cap


def customer_of(tracker: Tracker) -> str:
    """The shop's customer id for this conversation."""
    return str(message_metadata(tracker).get("customer_id") or tracker.sender_id)[:64]


def feedback_payload(product_id: str, action: str, request_id: str) -> str:
    """Button payload for one card action (more | dismiss | cart)."""
    body = {"product_id": product_id, "rec_action": action, "rec_request": request_id}
    return "/rec_feedback" + json.dumps(body, separators=(",", ":"))


def constraints_from(text: str, entities: list[dict[str, Any]], departments: list[str]) -> Constraints:
    """The customer's limits: a price cap (entity ``max_price``) and a department named in the text."""
    price = next((e.get("value") for e in entities if e.get("entity") == "max_price"), None)
    try:
        max_price = float(str(price).replace(",", ".")) if price is not None else None
    except ValueError:
        max_price = None
    if max_price is not None and not (0 < max_price < MAX_PRICE):  # "nan", "1e999", "-5": no price limit
        max_price = None
    lowered = text.lower()
    category = next((d for d in departments if re.search(rf"\b{re.escape(d.lower())}\b", lowered)), None)
    # a product type the NLU found in the catalog ("a sleeping bag" → "Camping | sleeping bag") names its department
    named = [str(e.get("value", "")).split("|")[0].strip() for e in entities if e.get("entity") == "product"]
    category = category or next((d for d in named if d in departments), None)
    return Constraints(category=category, max_price=max_price)


def _card_text(r: Recommendation) -> str:
    return f"{r.name} — ${r.price:.2f}\n{r.reason}\n{r.url}".rstrip()


def _log_impressions(
    recs: list[Recommendation], request_id: str, customer: str, tracker: Tracker, channel: str
) -> None:
    with session_scope(get_engine()) as s:
        for pos, r in enumerate(recs, 1):
            s.add(RecImpression(request_id=request_id, customer_id=customer, product_id=r.product_id, position=pos,
                                source=r.source, reason=r.reason[:300], channel=channel[:32],
                                conversation_id=tracker.sender_id[:255]))  # fmt: skip


def was_shown(s: Session, conversation_id: str, request_id: str, product_id: str) -> bool:
    """Whether this conversation was shown this card (request and product): only then do its buttons count."""
    query = select(RecImpression.id).where(
        RecImpression.conversation_id == conversation_id, RecImpression.request_id == request_id,
        RecImpression.product_id == product_id,
    )  # fmt: skip
    return s.exec(query).first() is not None


class ActionRecommendProducts(Action):
    """Show personalised product cards."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_recommend_products"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Recommend for the latest message (its department and price limit, if any)."""
        message = tracker.latest_message or {}
        customer = customer_of(tracker)
        like = next(tracker.get_latest_entity_values("product_id"), None) if _is_more_like(message) else None
        try:
            service = get_recommender()
            c = constraints_from(str(message.get("text") or ""), message.get("entities") or [], service.departments())
            c.like = str(like) if like else None
            recs = service.recommend(customer, CARDS, c)
            request_id = "r" + uuid.uuid4().hex[:15]  # a letter first: never read as a number
            if recs:
                _log_impressions(recs, request_id, customer, tracker, channel_of(tracker))
        except (RecommenderError, SQLAlchemyError, OSError):
            log.exception("recommendation failed")
            dispatcher.utter_message(text="I can't pick products for you right now, sorry. Please try again later.")
            return []
        if not recs:
            limits = " within those limits" if c.category or c.max_price else ""
            dispatcher.utter_message(text=f"I couldn't find anything in stock for you{limits}. Try another category?")
            return []
        intro = "Here are a few things you might like" + (f" in {c.category}" if c.category else "")
        dispatcher.utter_message(text=intro + (f" under ${c.max_price:g}" if c.max_price else "") + ":")
        for r in recs:
            dispatcher.utter_message(
                text=_card_text(r),
                buttons=[
                    {"title": "More like this", "payload": feedback_payload(r.product_id, "more", request_id)},
                    {"title": "Not interested", "payload": feedback_payload(r.product_id, "dismiss", request_id)},
                    {"title": "Add to cart", "payload": feedback_payload(r.product_id, "cart", request_id)},
                ],
                json_message={
                    "type": "product_card",
                    "request_id": request_id,
                    "product_id": r.product_id,
                    "name": r.name,
                    "price": r.price,
                    "category": r.category,
                    "url": r.url,
                    "reason": r.reason,
                },
            )
        return [SlotSet("rec_request", request_id)]


def _is_more_like(message: dict[str, Any]) -> bool:
    return any(e.get("entity") == "rec_action" and e.get("value") == "more" for e in message.get("entities") or [])


class ActionOfferIfLikely(Action):
    """A proactive offer when the customer's shopping session in progress looks like it will end in a purchase."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_offer_if_likely"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Say nothing unless the purchase-intent model is above its threshold."""
        customer = customer_of(tracker)
        try:
            service = get_recommender()
            intent = service.purchase_intent(customer)
            product = service.product(intent[2]) if intent else None
            if intent is None or product is None or not product.in_stock or intent[0] < intent[1]:
                return []
            request_id = "r" + uuid.uuid4().hex[:15]  # a letter first: never read as a number
            card = Recommendation(product.id, product.name, product.price, product.url, product.category,
                                  round(intent[0], 4), "intent", "You were looking at it just now")  # fmt: skip
            _log_impressions([card], request_id, customer, tracker, tracker.get_latest_input_channel() or "")
        except (RecommenderError, SQLAlchemyError, OSError):
            log.exception("purchase-intent offer failed")
            return []
        dispatcher.utter_message(
            text=f"Still thinking about the {product.name} (${product.price:.2f})? I can add it to your cart "
            "or show you similar ones.",
            buttons=[
                {"title": "Add to cart", "payload": feedback_payload(product.id, "cart", request_id)},
                {"title": "More like this", "payload": feedback_payload(product.id, "more", request_id)},
            ],
        )
        return [SlotSet("rec_request", request_id)]


class ActionRecommendationFeedback(Action):
    """Record a card button: more like this (then show similar), not interested, add to cart."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_recommendation_feedback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, Any]]:
        """Store the signal and answer."""
        product = next(tracker.get_latest_entity_values("product_id"), None)
        action = next(tracker.get_latest_entity_values("rec_action"), None)
        request = str(next(tracker.get_latest_entity_values("rec_request"), "") or "")[:64]
        customer = customer_of(tracker)
        try:
            known = bool(product) and get_recommender().product(str(product)) is not None
        except SQLAlchemyError:
            known = False
        if not known or action not in ("more", "dismiss", "cart"):
            dispatcher.utter_message(text="Sorry, I didn't get which product you meant.")
            return []
        kinds = {"more": ["rec_click"], "dismiss": ["rec_dismiss"], "cart": ["rec_click", "cart"]}[str(action)]
        try:
            with Session(get_engine()) as s:
                if not was_shown(s, tracker.sender_id, request, str(product)):  # forged or replayed elsewhere
                    refuse(s, "rec_feedback_not_shown", tracker.sender_id)
                    s.commit()
                    note = 'That product card isn\'t from this chat. Say "recommend" for new ones.'
                    dispatcher.utter_message(text=note)
                    return []
                for kind in kinds:
                    record_event(s, customer_id=customer, product_id=str(product), kind=kind, session_id=request)
                s.commit()
        except (RecommenderError, SQLAlchemyError):
            log.exception("could not record %s on %s", action, product)
        if action == "more":
            return ActionRecommendProducts().run(dispatcher, tracker, domain)
        if action == "dismiss":
            dispatcher.utter_message(text="Got it, I won't suggest that one again.")
        else:
            dispatcher.utter_message(text="Added to your cart. Anything else I can find for you?")
        return []
