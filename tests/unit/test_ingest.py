"""Turns copied from Rasa's tracker store: exactly once, late rows, bad rows."""

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, select

from core.db import make_engine
from core.models import Checkpoint, Turn
from monitoring.ingest import CHECKPOINT, ingest_all, ingest_once

DDL = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) NOT NULL,"
    " timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"
)


def _user_event(text_: str, intent: str, sentiment: str | None = "neutral") -> str:
    parse = {"intent": {"name": intent, "confidence": 0.9}, "entities": [], "text": text_}
    if sentiment:
        parse["sentiment"] = {"label": sentiment, "score": 0.8}  # type: ignore[assignment]
    return json.dumps({"event": "user", "text": text_, "parse_data": parse, "input_channel": "rest"})


def _tracker(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
    with engine.begin() as c:
        c.execute(text(DDL))
    return engine


def _insert(engine, id_: int, type_name: str, data: str | None) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO events (id, sender_id, type_name, timestamp, data) VALUES (:i, 's1', :t, 1700000000, :d)"
            ),
            {"i": id_, "t": type_name, "d": data},
        )


def test_user_turns_ingested_once(tmp_path: Path, sqlite_url: str) -> None:
    tracker, app = _tracker(tmp_path), make_engine(sqlite_url)
    _insert(tracker, 1, "user", _user_event("hi", "greet"))
    _insert(tracker, 2, "bot", json.dumps({"event": "bot", "text": "hello"}))
    _insert(tracker, 3, "user", _user_event("I am angry", "complaint", "negative"))
    assert ingest_all(tracker, app) == 2
    assert ingest_all(tracker, app) == 0  # a restart re-reads nothing twice
    with Session(app) as s:
        turns = s.exec(select(Turn).order_by(Turn.tracker_event_id)).all()
        assert [(t.intent, t.sentiment, t.channel) for t in turns] == [
            ("greet", "neutral", "rest"),
            ("complaint", "negative", "rest"),
        ]
        assert s.get(Checkpoint, CHECKPOINT).position == 3  # type: ignore[union-attr]


def test_late_committed_row_behind_checkpoint_is_caught(tmp_path: Path, sqlite_url: str) -> None:
    tracker, app = _tracker(tmp_path), make_engine(sqlite_url)
    _insert(tracker, 5, "user", _user_event("first", "greet"))
    ingest_once(tracker, app)
    _insert(tracker, 4, "user", _user_event("late", "greet"))  # lower id, committed later
    assert ingest_once(tracker, app) == 1
    with Session(app) as s:
        assert sorted(t.text for t in s.exec(select(Turn)).all()) == ["first", "late"]


def test_missing_fields_and_garbage_json(tmp_path: Path, sqlite_url: str) -> None:
    tracker, app = _tracker(tmp_path), make_engine(sqlite_url)
    _insert(tracker, 1, "user", "{not json")
    _insert(tracker, 2, "user", json.dumps({"event": "user", "text": "x" * 20000}))
    assert ingest_all(tracker, app) == 2
    with Session(app) as s:
        turns = s.exec(select(Turn).order_by(Turn.tracker_event_id)).all()
        assert turns[0].intent is None and turns[0].text == ""
        assert turns[1].sentiment is None and len(turns[1].text) == 10_000


def test_no_tracker_table_yet(tmp_path: Path, sqlite_url: str) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'none.db'}")
    assert ingest_once(empty, make_engine(sqlite_url)) == 0


def test_a_message_already_taken_from_the_broker_is_not_stored_again(tmp_path: Path, sqlite_url: str) -> None:
    tracker, app = _tracker(tmp_path), make_engine(sqlite_url)
    with Session(app) as s:  # switched from the broker to the tracker store: m1 was counted already
        s.add(Turn(message_id="m1", sender_id="s1", text="hi", timestamp=datetime.now(UTC)))
        s.commit()
    for i, mid in enumerate(["m1", "m2", None, None], start=1):
        event = json.loads(_user_event(f"turn {i}", "greet"))
        _insert(tracker, i, "user", json.dumps({**event, "message_id": mid} if mid else event))
    assert ingest_all(tracker, app) == 3  # m2 and the two turns without an id
    with Session(app) as s:
        assert sorted(str(t.message_id) for t in s.exec(select(Turn)).all()) == ["None", "None", "m1", "m2"]


def test_catching_up_does_not_stop_at_a_batch_of_turns_the_broker_already_stored(
    tmp_path: Path, sqlite_url: str
) -> None:
    tracker, app = _tracker(tmp_path), make_engine(sqlite_url)
    with Session(app) as s:  # the broker delivered the first five
        s.add_all(Turn(message_id=f"m{i}", sender_id="s1", text="t", timestamp=datetime.now(UTC)) for i in range(1, 6))
        s.commit()
    for i in range(1, 8):
        event = json.loads(_user_event(f"turn {i}", "greet"))
        _insert(tracker, i, "user", json.dumps({**event, "message_id": f"m{i}"}))
    assert ingest_all(tracker, app, batch=2) == 2  # m6 and m7, behind batches holding nothing new
    with Session(app) as s:
        assert s.get(Checkpoint, CHECKPOINT).position == 7  # type: ignore[union-attr]
