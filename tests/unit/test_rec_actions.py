"""Recommendation actions: cards with buttons, impressions, clicks, dismissals, limits, outages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlmodel import Session, select

from bot.actions.recommend import (
    ActionRecommendationFeedback,
    ActionRecommendProducts,
    constraints_from,
    set_recommender,
)
from core.db import get_engine
from core.models import BehaviourEvent, RecImpression
from recommender.__main__ import import_demo
from recommender.service import RecommenderService


def _tracker(
    text: str, intent: str = "ask_recommendation", customer: str = "cust0001", sender: str = "web-session-1",
    **ents: str,
) -> Tracker:  # fmt: skip
    entities = [{"entity": k, "value": v} for k, v in ents.items()]
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {},
            "latest_message": {
                "text": text,
                "intent": {"name": intent},
                "entities": entities,
                "metadata": {"customer_id": customer},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def _run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    d = CollectingDispatcher()
    return action.run(d, tracker, {}), d.messages


@pytest.fixture()
def service(app_settings: Any, tmp_path: Any):  # type: ignore[no-untyped-def]
    import_demo()
    svc = RecommenderService(engine=get_engine(), model_root=tmp_path / "none", reload_seconds=0)
    set_recommender(svc)
    yield svc
    set_recommender(None)


def _payload(message: dict[str, Any], title: str) -> dict[str, str]:
    raw = next(b["payload"] for b in message["buttons"] if b["title"] == title)
    assert raw.startswith("/rec_feedback")
    return json.loads(raw[len("/rec_feedback") :])


def test_cards_are_logged_and_buttons_recorded(service: RecommenderService) -> None:
    events, messages = _run(ActionRecommendProducts(), _tracker("anything for me?"))
    cards = [m for m in messages if m.get("custom", {}).get("type") == "product_card"]
    assert len(cards) == 3 and messages[0]["text"].startswith("Here are a few things")
    request = cards[0]["custom"]["request_id"]
    assert events == [{"event": "slot", "timestamp": None, "name": "rec_request", "value": request}]
    cart = _payload(cards[0], "Add to cart")
    _, reply = _run(ActionRecommendationFeedback(), _tracker("", "rec_feedback", **cart))
    assert "Added to your cart" in reply[0]["text"]
    dismiss = _payload(cards[1], "Not interested")
    _run(ActionRecommendationFeedback(), _tracker("", "rec_feedback", **dismiss))
    with Session(get_engine()) as s:
        shown = s.exec(select(RecImpression).where(RecImpression.request_id == request)).all()
        chat = s.exec(select(BehaviourEvent).where(BehaviourEvent.source == "chat")).all()
    assert sorted(i.position for i in shown) == [1, 2, 3] and all(i.customer_id == "cust0001" for i in shown)
    assert {(e.product_id, e.kind, e.session_id) for e in chat} == {
        (cart["product_id"], "rec_click", request), (cart["product_id"], "cart", request),
        (dismiss["product_id"], "rec_dismiss", request),
    }  # fmt: skip
    _, again = _run(ActionRecommendProducts(), _tracker("anything else?"))
    assert dismiss["product_id"] not in {m.get("custom", {}).get("product_id") for m in again}


def test_forged_or_unknown_product_is_refused(service: RecommenderService) -> None:
    _, reply = _run(ActionRecommendationFeedback(), _tracker("", "rec_feedback", product_id="NOPE", rec_action="cart"))
    assert "didn't get which product" in reply[0]["text"]
    _, reply = _run(ActionRecommendationFeedback(), _tracker("", "rec_feedback", product_id="CAM-01V", rec_action="x"))
    assert "didn't get which product" in reply[0]["text"]
    with Session(get_engine()) as s:
        assert not s.exec(select(BehaviourEvent).where(BehaviourEvent.source == "chat")).all()


def test_card_buttons_count_only_in_the_conversation_that_was_shown_the_card(service: RecommenderService) -> None:
    """Issue 18, finding 4: clicks for invented or other conversations' cards were stored and fed CTR and training."""
    from core.models import RefusedInput

    _, messages = _run(ActionRecommendProducts(), _tracker("anything for me?"))
    card = _payload(next(m for m in messages if m.get("custom")), "Add to cart")
    forged = {**card, "rec_request": "rinvented000000"}
    other = next(p for p in ("CAM-01V", "GAR-01V") if p != card["product_id"])
    for tracker in (
        _tracker("", "rec_feedback", **forged),  # a request id never shown
        _tracker("", "rec_feedback", sender="web-someone-else", **card),  # another conversation replaying it
        _tracker("", "rec_feedback", **{**card, "product_id": other}),  # a product that was not on the card
    ):
        _, reply = _run(ActionRecommendationFeedback(), tracker)
        assert "isn't from this chat" in reply[0]["text"]
    with Session(get_engine()) as s:
        assert not s.exec(select(BehaviourEvent).where(BehaviourEvent.source == "chat")).all()
        assert [r.kind for r in s.exec(select(RefusedInput))] == ["rec_feedback_not_shown"] * 3
    _, reply = _run(ActionRecommendationFeedback(), _tracker("", "rec_feedback", **card))
    assert "Added to your cart" in reply[0]["text"]


@pytest.mark.parametrize("raw", ["nan", "1e999", "-5", "0", "inf"])
def test_a_price_limit_that_is_no_number_is_no_limit(service: RecommenderService, raw: str) -> None:
    """Issue 18, finding 8: "under $inf" was printed."""
    assert constraints_from("under " + raw, [{"entity": "max_price", "value": raw}], []).max_price is None
    _, messages = _run(ActionRecommendProducts(), _tracker("anything under " + raw, max_price=raw))
    assert "under $" not in messages[0]["text"]  # neither "under $inf" nor "under $nan"


def test_limits_from_the_message_and_nothing_found(service: RecommenderService) -> None:
    c = constraints_from("any camping gear under $40?", [{"entity": "max_price", "value": "40"}], service.departments())
    assert (c.category, c.max_price) == ("Camping", 40.0)
    _, messages = _run(ActionRecommendProducts(), _tracker("garden things under 15", max_price="15"))
    prices = [m["custom"]["price"] for m in messages if m.get("custom")]
    assert prices and all(p <= 15 for p in prices) and "in Garden under $15" in messages[0]["text"]
    _, messages = _run(ActionRecommendProducts(), _tracker("camping under 1", max_price="1"))
    assert "couldn't find anything in stock for you within those limits" in messages[0]["text"]


def test_database_down_gives_a_polite_reply(service: RecommenderService, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def broken(*_: Any, **__: Any) -> None:
        raise OperationalError("select", {}, Exception("down"))

    monkeypatch.setattr(service, "recommend", broken)
    _, messages = _run(ActionRecommendProducts(), _tracker("anything for me?"))
    assert "can't pick products for you right now" in messages[0]["text"]


def test_click_through_and_conversion(service: RecommenderService) -> None:
    from datetime import UTC, datetime, timedelta

    from recommender.events import record_event
    from recommender.report import recommendation_stats

    start = datetime.now(UTC) - timedelta(minutes=1)
    _, messages = _run(ActionRecommendProducts(), _tracker("anything for me?"))
    cards = [m for m in messages if m.get("custom")]
    _run(ActionRecommendationFeedback(), _tracker("", "rec_feedback", **_payload(cards[0], "Add to cart")))
    with Session(get_engine()) as s:
        record_event(s, customer_id="cust0001", product_id=cards[0]["custom"]["product_id"], kind="purchase")
        record_event(s, customer_id="cust0001", product_id="GAR-01V", kind="purchase")  # never shown
        s.commit()
        stats = recommendation_stats(s, start)
    assert stats["all"] == {"impressions": 3, "clicks": 1, "ctr": 0.3333, "conversions": 1, "conversion_rate": 0.3333}
    assert stats["popularity"]["impressions"] == 3
