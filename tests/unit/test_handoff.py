"""The handoff state machine: transitions, who may do what, races, and the migration of old tickets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, create_engine, select

from core.handoff import (
    HandoffConflict,
    HandoffNotFound,
    InvalidTransition,
    NotYourHandoff,
    history,
    open_handoff,
    queue_position,
    stale_queued,
    transition,
)
from core.models import Handoff, utcnow


@pytest.fixture()
def engine(sqlite_url: str):  # type: ignore[no-untyped-def]
    e = create_engine(sqlite_url)
    yield e
    e.dispose()


def _open(engine, conv: str = "c1") -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        h = open_handoff(s, conversation_id=conv, reason="explicit_request", channel="web", last_message="help")
        s.commit()
        assert h.id is not None
        return h.id


def test_full_cycle_is_recorded_with_who(engine) -> None:  # type: ignore[no-untyped-def]
    hid = _open(engine)
    with Session(engine) as s:
        assert transition(s, hid, "claim", actor="ann").handoff.agent == "ann"
        change = transition(s, hid, "resolve", actor="ann")
        s.commit()
        assert (change.from_state, change.to_state) == ("claimed", "resolved")
        assert change.handoff.closed_at is not None
        steps = [(t.from_state, t.to_state, t.actor) for t in history(s, hid)]
    assert steps == [("bot", "queued", "bot"), ("queued", "claimed", "ann"), ("claimed", "resolved", "ann")]


def test_one_active_handoff_per_conversation(engine) -> None:  # type: ignore[no-untyped-def]
    assert _open(engine) == _open(engine)
    with Session(engine) as s, pytest.raises(IntegrityError):  # even a writer that skips the check
        s.add(Handoff(conversation_id="c1", reason="x", state="claimed"))
        s.commit()
    hid = _open(engine)
    with Session(engine) as s:
        transition(s, hid, "cancel", actor="customer")
        s.commit()
    assert _open(engine) != hid  # after closing, a new one may open


@pytest.mark.parametrize(
    ("steps", "bad", "error"),
    [
        ([], "resolve", InvalidTransition),  # resolve on an unclaimed handoff
        ([], "hand_back", InvalidTransition),
        (["claim"], "claim", InvalidTransition),  # double claim, one after the other
        (["claim", "resolve"], "claim", InvalidTransition),  # closed is closed
        ([], "explode", InvalidTransition),
    ],
)
def test_illegal_transitions(engine, steps: list[str], bad: str, error: type) -> None:  # type: ignore[no-untyped-def]
    hid = _open(engine)
    with Session(engine) as s:
        for step in steps:
            transition(s, hid, step, actor="ann")
        s.commit()
        with pytest.raises(error, match=f"handoff #{hid}"):
            transition(s, hid, bad, actor="bob")


def test_only_the_owner_or_an_admin_closes(engine) -> None:  # type: ignore[no-untyped-def]
    hid = _open(engine)
    with Session(engine) as s:
        transition(s, hid, "claim", actor="ann")
        with pytest.raises(NotYourHandoff, match="claimed by ann"):
            transition(s, hid, "resolve", actor="bob")
        assert transition(s, hid, "hand_back", actor="root", override=True).to_state == "returned"


def test_concurrent_claims_one_wins(engine) -> None:  # type: ignore[no-untyped-def]
    hid = _open(engine)
    with Session(engine) as slow, Session(engine) as fast:
        seen = slow.get(Handoff, hid)  # bob's request read the handoff before ann's claim landed
        assert seen is not None and seen.state == "queued"
        transition(fast, hid, "claim", actor="ann")
        fast.commit()
        with pytest.raises(HandoffConflict):
            transition(slow, hid, "claim", actor="bob")
    with Session(engine) as s:
        assert s.get(Handoff, hid).agent == "ann"  # type: ignore[union-attr]
        assert [t.actor for t in history(s, hid)] == ["bot", "ann"]


def test_missing_handoff(engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s, pytest.raises(HandoffNotFound):
        transition(s, 999, "claim", actor="ann")


def test_queue_position_and_staleness(engine) -> None:  # type: ignore[no-untyped-def]
    ids = [_open(engine, f"c{i}") for i in range(3)]
    with Session(engine) as s:
        transition(s, ids[0], "claim", actor="ann")
        s.commit()
        assert [queue_position(s, s.get(Handoff, i)) for i in ids[1:]] == [1, 2]  # type: ignore[arg-type]
        assert stale_queued(s, older_than=timedelta(minutes=5)) == []
        later = utcnow() + timedelta(minutes=6)
        assert [h.id for h in stale_queued(s, older_than=timedelta(minutes=5), now=later)] == ids[1:]


def test_migration_turns_old_tickets_into_handoffs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command
    from alembic.config import Config

    from core.db import MIGRATIONS, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0003")
    e = create_engine(url)
    with e.begin() as c:
        for i, (sender, status) in enumerate([("a", "queued"), ("a", "queued"), ("b", "resolved")], 1):
            c.execute(text("INSERT INTO ticket (id, sender_id, reason, status, last_message, created_at) "
                           "VALUES (:i, :s, 'explicit_request', :st, 'hi', '2026-01-01 10:00:00')"),
                      {"i": i, "s": sender, "st": status})  # fmt: skip
    upgrade(url)
    with Session(e) as s:
        rows = [(h.id, h.conversation_id, h.state) for h in s.exec(select(Handoff).order_by(Handoff.id))]  # type: ignore[arg-type]
    assert rows == [(1, "a", "expired"), (2, "a", "queued"), (3, "b", "resolved")]
    e.dispose()
