"""The handoff state machine: bot → queued → claimed → resolved, and back to the bot.

```
queued  --claim-->    claimed  --resolve-->   resolved   (the bot asks for a CSAT rating)
queued  --cancel-->   cancelled                          (the customer changed their mind)
queued  --expire-->   expired                            (nobody claimed it in time)
claimed --release-->  queued                             (the agent puts it back in the queue)
claimed --hand_back-> returned                           (back to the bot without a resolution)
```

Every change is one conditional ``UPDATE ... WHERE state = <the state read>``: of two agents
claiming at once exactly one wins, the other gets :class:`HandoffConflict`. Each change is also
written to ``handoff_transition`` with who and when. Used by the action server (opening) and the
channels gateway (everything else); the database is the only shared state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from core.errors import CoreError
from core.models import ACTIVE_HANDOFF_STATES, Handoff, HandoffTransition, utcnow

TRANSITIONS: dict[str, dict[str, str]] = {
    "queued": {"claim": "claimed", "cancel": "cancelled", "expire": "expired"},
    "claimed": {"resolve": "resolved", "release": "queued", "hand_back": "returned"},
}
CLOSED_STATES = ("resolved", "cancelled", "expired", "returned")
CANCEL_PAYLOAD = "/handoff_cancel"  # the customer's way out of the queue (handled by the gateway)
CANCEL_BUTTON = {"title": "Cancel, keep chatting with the bot", "payload": CANCEL_PAYLOAD}
OWNER_ONLY = {"resolve", "release", "hand_back"}  # on a claimed handoff: its agent (or an admin) only


class HandoffError(CoreError):
    """Base class of handoff errors."""


class HandoffNotFound(HandoffError):
    """No handoff with this id."""


class InvalidTransition(HandoffError):
    """The action is not allowed in the handoff's state (resolving an unclaimed handoff, say)."""


class HandoffConflict(HandoffError):
    """Someone else changed the handoff first (two agents claiming at once: one wins)."""


class NotYourHandoff(HandoffError):
    """The handoff is claimed by another agent."""


@dataclass(frozen=True)
class Change:
    """The outcome of a transition: the handoff after it and the states it moved between."""

    handoff: Handoff
    from_state: str
    to_state: str


def active_handoff(session: Session, conversation_id: str) -> Handoff | None:
    """The queued or claimed handoff of a conversation, if any."""
    return session.exec(
        select(Handoff).where(Handoff.conversation_id == conversation_id, col(Handoff.state).in_(ACTIVE_HANDOFF_STATES))
    ).first()


def open_handoff(session: Session, *, conversation_id: str, reason: str, channel: str, last_message: str) -> Handoff:
    """Queue a handoff for the conversation; an active one is returned as it is (never two at once)."""
    if existing := active_handoff(session, conversation_id):
        return existing
    handoff = Handoff(conversation_id=conversation_id, reason=reason, channel=channel, last_message=last_message[:4000])
    try:
        with session.begin_nested():
            session.add(handoff)
            session.flush()
    except IntegrityError:  # a concurrent request opened one between our read and our insert
        if existing := active_handoff(session, conversation_id):
            return existing
        raise
    assert handoff.id is not None
    session.add(HandoffTransition(handoff_id=handoff.id, from_state="bot", to_state="queued", actor="bot", note=reason))
    session.flush()
    return handoff


def transition(
    session: Session, handoff_id: int, action: str, *, actor: str, note: str = "", override: bool = False
) -> Change:
    """Apply ``action`` to a handoff as ``actor``; ``override`` lets an admin act on another agent's handoff.

    Raises:
        HandoffNotFound, InvalidTransition, NotYourHandoff, HandoffConflict.
    """
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        raise HandoffNotFound(f"handoff #{handoff_id} does not exist")
    before = handoff.state
    target = TRANSITIONS.get(before, {}).get(action)
    if target is None:
        allowed = ", ".join(TRANSITIONS.get(before, {})) or "nothing (it is closed)"
        raise InvalidTransition(f"cannot {action.replace('_', ' ')} handoff #{handoff_id}: it is {before}; "
                                f"allowed: {allowed}")  # fmt: skip
    if action in OWNER_ONLY and handoff.agent != actor and not override:
        raise NotYourHandoff(f"handoff #{handoff_id} is claimed by {handoff.agent}")
    now = utcnow()
    values: dict[str, object] = {"state": target, "updated_at": now}
    if action == "claim":
        values.update(agent=actor, claimed_at=now)
    elif action == "release":
        values.update(agent=None, claimed_at=None)
    if target in CLOSED_STATES:
        values["closed_at"] = now
    done = session.execute(
        update(Handoff).where(col(Handoff.id) == handoff_id, col(Handoff.state) == before).values(**values)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise HandoffConflict(f"handoff #{handoff_id} was changed by someone else; reload and try again")
    session.add(HandoffTransition(handoff_id=handoff_id, from_state=before, to_state=target, actor=actor, note=note))
    session.flush()
    session.refresh(handoff)
    return Change(handoff=handoff, from_state=before, to_state=target)


def queue_position(session: Session, handoff: Handoff) -> int:
    """1-based place of a queued handoff (oldest first)."""
    ahead = session.exec(
        select(func.count()).select_from(Handoff).where(Handoff.state == "queued", col(Handoff.id) < handoff.id)
    ).one()
    return int(ahead) + 1


def queued_notice(handoff_id: int | None, position: int) -> str:
    """What the customer is told when their handoff is queued."""
    return (f"I've asked a colleague from our support team to join (request #{handoff_id}, you're number "
            f"{position} in the queue). They'll reply right here.")  # fmt: skip


def stale_queued(session: Session, *, older_than: timedelta, now: datetime | None = None) -> list[Handoff]:
    """Queued handoffs nobody claimed for ``older_than`` (they expire)."""
    cutoff = (now or utcnow()) - older_than
    return list(session.exec(select(Handoff).where(Handoff.state == "queued", col(Handoff.created_at) < cutoff)))


def unannounced(session: Session) -> list[Handoff]:
    """Queued handoffs not yet posted to the staff (Slack channel)."""
    return list(
        session.exec(
            select(Handoff)
            .where(Handoff.state == "queued", col(Handoff.announced_at).is_(None))
            .order_by(col(Handoff.id))
        )
    )


def history(session: Session, handoff_id: int) -> list[HandoffTransition]:
    """The handoff's transitions, oldest first."""
    return list(
        session.exec(
            select(HandoffTransition)
            .where(HandoffTransition.handoff_id == handoff_id)
            .order_by(col(HandoffTransition.id))
        )
    )
