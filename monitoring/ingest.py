"""Copy every user turn from Rasa's tracker store into the queryable ``turn`` table.

Exactly once: turns and the checkpoint are written in one transaction, and
``turn.tracker_event_id`` is unique. Rows that commit late with a lower id than
the checkpoint (concurrent writers on PostgreSQL) are caught by re-reading a
window of ``LOOKBACK`` ids behind it. Rasa's ``message_id`` is kept too (unique), so a
message that already arrived through the event broker (``monitoring.broker``) is not stored twice.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, col, select

from core.models import Checkpoint, Turn, utcnow

log = logging.getLogger(__name__)
CHECKPOINT = "tracker_turns"
LOOKBACK = 500
MAX_TEXT = 10_000
_QUERY = (
    "SELECT id, sender_id, timestamp, data FROM events WHERE type_name = 'user' AND id > :after{} "
    "ORDER BY id LIMIT :limit"
)
_ALL, _SETTLED = text(_QUERY.format("")), text(_QUERY.format(" AND timestamp < :before"))


def turn_from_event(event_id: int | None, sender_id: str, timestamp: float | None, data: str | dict[str, Any] | None
                    ) -> Turn:  # fmt: skip
    """Build a Turn from one ``events`` row or broker message; tolerant of missing parse data."""
    if isinstance(data, dict):
        event: dict[str, Any] = data
    else:
        try:
            event = json.loads(data or "{}")
        except json.JSONDecodeError:
            event = {}
        if not isinstance(event, dict):
            event = {}
    parse = event.get("parse_data") or {}
    intent = parse.get("intent") or {}
    sentiment = parse.get("sentiment") or {}
    ts = timestamp if timestamp is not None else event.get("timestamp")
    return Turn(
        tracker_event_id=event_id,
        message_id=str(event["message_id"])[:100] if event.get("message_id") else None,
        sender_id=sender_id,
        channel=event.get("input_channel"),
        text=str(event.get("text") or "")[:MAX_TEXT],
        intent=intent.get("name"),
        confidence=intent.get("confidence"),
        sentiment=sentiment.get("label") if isinstance(sentiment, dict) else None,
        sentiment_score=sentiment.get("score") if isinstance(sentiment, dict) else None,
        entities=json.dumps(parse.get("entities") or [])[:MAX_TEXT],
        timestamp=datetime.fromtimestamp(float(ts), tz=UTC) if ts is not None else utcnow(),
    )


def unseen(session: Session, turns: list[Turn]) -> list[Turn]:
    """The turns whose ``message_id`` is neither stored yet nor repeated earlier in ``turns`` (no id: kept)."""
    ids = [t.message_id for t in turns if t.message_id]
    taken = set(session.exec(select(Turn.message_id).where(col(Turn.message_id).in_(ids))).all()) if ids else set()
    new = []
    for t in turns:
        if t.message_id:
            if t.message_id in taken:
                continue
            taken.add(t.message_id)
        new.append(t)
    return new


def ingest_once(tracker: Engine, app: Engine, batch: int = 1000) -> int:
    """Move the next batch of user turns; returns how many new turns were stored."""
    return _next_batch(tracker, app, batch, None)[0]


def _next_batch(tracker: Engine, app: Engine, batch: int, before: float | None) -> tuple[int, bool]:
    """Store the next batch's new turns (only those older than ``before``, a Unix time, when given):
    (how many, whether the checkpoint moved)."""
    with Session(app) as session:
        cp = session.get(Checkpoint, CHECKPOINT) or Checkpoint(name=CHECKPOINT, position=0)
        try:
            with tracker.connect() as conn:
                params = {"after": max(0, cp.position - LOOKBACK), "limit": batch + LOOKBACK, "before": before}
                rows = conn.execute(_ALL if before is None else _SETTLED, params).all()
        except (OperationalError, ProgrammingError) as exc:
            if "events" in str(exc):  # Rasa has not created its table yet
                return 0, False
            raise
        ids = [r.id for r in rows]
        known = set(session.exec(select(Turn.tracker_event_id).where(col(Turn.tracker_event_id).in_(ids))).all())
        fresh = [turn_from_event(r.id, r.sender_id, r.timestamp, r.data) for r in rows if r.id not in known]
        new = unseen(session, fresh)  # not already stored from the broker
        session.add_all(new)
        position = max([cp.position, *ids])
        moved = position > cp.position
        if moved:
            cp.position, cp.updated_at = position, utcnow()
            session.add(cp)
        session.commit()
    if new:
        log.info("ingested %d turns (checkpoint %d)", len(new), position)
    return len(new), moved


def ingest_all(tracker: Engine, app: Engine, batch: int = 1000, *, before: float | None = None) -> int:
    """Ingest until caught up (the checkpoint reaches the newest event, or the newest older than ``before``,
    a Unix time); returns how many new turns."""
    total, moved = 0, True
    while moved:
        n, moved = _next_batch(tracker, app, batch, before)
        total += n
    return total
