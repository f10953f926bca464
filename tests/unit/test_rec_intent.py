"""Purchase intent: sessions, early features, the model against its baseline, the proactive offer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlmodel import Session

from bot.actions.recommend import ActionOfferIfLikely, set_recommender
from core.db import get_engine
from recommender.events import histories, import_events, import_products, insert_events
from recommender.intent import Event, IntentModel, features, session_rows, split_sessions, train_intent
from recommender.service import RecommenderService
from recommender.simulate import catalog_rows, simulate, write_csv
from recommender.train import train
from tests.unit.test_rec_service import TINY

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def _ev(product: str, kind: str = "view", minutes: float = 0, session: str = "s1", dept: str = "Camping") -> Event:
    return Event("c1", product, kind, T0 + timedelta(minutes=minutes), session, dept, 50.0)


def test_sessions_by_id_or_gap_and_features_stop_at_the_cart() -> None:
    assert len(split_sessions([_ev("a"), _ev("b", minutes=5), _ev("c", minutes=6, session="s2")])) == 2
    no_ids = [_ev("a", session=""), _ev("b", minutes=10, session=""), _ev("c", minutes=100, session="")]
    assert [len(s) for s in split_sessions(no_ids)] == [2, 1]
    focused = features([_ev("a"), _ev("b", minutes=2)], [])
    mixed = features([_ev("a"), _ev("x", minutes=2, dept="Garden")], [])
    assert focused["focus"] == 1.0 and mixed["focus"] == 0.5
    rows = session_rows([_ev("a"), _ev("a", "cart", 1), _ev("a", "purchase", 2), _ev("b", minutes=3)])
    assert len(rows) == 1 and rows[0].purchased
    assert rows[0].features == features([_ev("a")], [])  # only the view before the cart counts
    assert session_rows([_ev("a", "cart")]) == []  # nothing seen before the cart: no early signal


def test_model_beats_the_views_baseline_and_round_trips(tmp_path: Path) -> None:
    events = simulate(150, 10, seed=5, start=T0)
    by_product = {r["id"]: r for r in catalog_rows()}
    evs = [Event(e["customer_id"], e["product_id"], e["kind"], datetime.fromisoformat(e["timestamp"]),
                 e["session_id"], by_product[e["product_id"]]["category"].split(" | ")[0],
                 float(by_product[e["product_id"]]["price"])) for e in events]  # fmt: skip
    model = train_intent(session_rows(evs))
    assert model.metrics["auc"] > model.metrics["auc_baseline_views"] + 0.05
    model.save(tmp_path / "intent.json")
    again = IntentModel.load(tmp_path / "intent.json")
    feats = features([_ev("a"), _ev("b", minutes=2)], [])
    assert again.probability(feats) == pytest.approx(model.probability(feats))
    with pytest.raises(ValueError, match="with and without purchases"):
        train_intent(session_rows([_ev("a")]))


def _tracker(customer: str) -> Tracker:
    return Tracker.from_dict({"sender_id": "s", "slots": {}, "latest_message": {
        "text": "hi", "intent": {"name": "greet"}, "entities": [], "metadata": {"customer_id": customer}},
        "events": [], "paused": False, "followup_action": None, "active_loop": {},
        "latest_action_name": "action_listen"})  # fmt: skip


def test_offer_only_for_a_session_in_progress(app_settings: Any, tmp_path: Path) -> None:
    engine = get_engine()
    write_csv(tmp_path / "catalog.csv", catalog_rows())
    write_csv(tmp_path / "events.csv", simulate(40, 8, seed=3, start=T0))
    with Session(engine) as s:
        import_products(s, tmp_path / "catalog.csv")
        import_events(s, tmp_path / "events.csv")
        from recommender.intent import load_events

        train(histories(s), dict(TINY), tmp_path / "models", session_rows(load_events(s)))
        now = datetime.now(UTC)
        insert_events(s, [{"customer_id": "shopper", "product_id": p, "kind": "view", "ts": now - timedelta(minutes=m),
                           "session_id": "live", "value": None, "source": "import"}
                          for p, m in (("CAM-01V", 6), ("CAM-02V", 4), ("CAM-03V", 2))])  # fmt: skip
        s.commit()
    service = RecommenderService(engine=engine, model_root=tmp_path / "models", reload_seconds=0)
    set_recommender(service)
    try:
        p, _, last = service.purchase_intent("shopper")  # type: ignore[misc]
        assert 0 < p < 1 and last == "CAM-03V"
        assert service.purchase_intent("cust0001") is None  # last seen in October: no session in progress
        assert service._bundle is not None and service._bundle.intent is not None
        service._bundle.intent.threshold = 0.0
        d = CollectingDispatcher()
        ActionOfferIfLikely().run(d, _tracker("shopper"), {})
        assert "Still thinking about the Value sleeping pad" in d.messages[0]["text"]
        assert [b["title"] for b in d.messages[0]["buttons"]] == ["Add to cart", "More like this"]
        service._bundle.intent.threshold = 1.0
        d = CollectingDispatcher()
        ActionOfferIfLikely().run(d, _tracker("shopper"), {})
        assert d.messages == []
    finally:
        set_recommender(None)
