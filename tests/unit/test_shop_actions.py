"""Order lookup and handoff: services and rasa-sdk actions (exact events and messages)."""

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlmodel import Session, select

from bot.actions import ActionCheckOrderStatus, ActionRequestHandoff
from core.db import get_engine
from core.demo import seed
from core.models import Handoff, HandoffTransition
from core.shop import normalize_order_id


def _tracker(slots: dict[str, Any] | None = None, text: str = "", sender: str = "u1") -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots or {},
            "latest_message": {"text": text, "intent": {"name": "x"}, "entities": []},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


@pytest.mark.parametrize(("raw", "want"), [("100234", "100234"), ("#00100234", "100234"), ("abc", None), ("", None)])
def test_normalize_order_id(raw: str, want: str | None) -> None:
    assert normalize_order_id(raw) == want


def test_order_status_found(app_settings) -> None:  # type: ignore[no-untyped-def]
    seed()
    d = CollectingDispatcher()
    events = ActionCheckOrderStatus().run(d, _tracker({"order_id": "#100234"}), {})
    assert events == [{"event": "slot", "timestamp": None, "name": "order_id", "value": None}]
    assert "100234" in d.messages[0]["text"] and "on its way with UPS" in d.messages[0]["text"]


def test_order_status_unknown_and_invalid(app_settings) -> None:  # type: ignore[no-untyped-def]
    seed()
    d = CollectingDispatcher()
    ActionCheckOrderStatus().run(d, _tracker({"order_id": "999999"}), {})
    ActionCheckOrderStatus().run(d, _tracker({"order_id": "not-a-number"}), {})
    assert "couldn't find an order with the number 999999" in d.messages[0]["text"]
    assert "doesn't look like an order number" in d.messages[1]["text"]


def test_order_status_database_down(app_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", "sqlite:////nonexistent-dir/x/app.db")
    from core import db, settings

    settings.get_settings.cache_clear()
    db._engines.clear()
    monkeypatch.setattr(db, "make_engine", lambda url: db.create_engine(url))  # no mkdir: the DB is unreachable
    d = CollectingDispatcher()
    ActionCheckOrderStatus().run(d, _tracker({"order_id": "100234"}), {})
    assert "can't reach our order system" in d.messages[0]["text"]


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
