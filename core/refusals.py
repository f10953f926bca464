"""Input refused because it does not belong to its conversation, stored so that it can be counted.

Kinds: ``csat_not_due`` (a rating without a resolved handoff to rate, or a second one),
``rec_feedback_not_shown`` (a card button for a card this conversation was never shown),
``order_proof_failed`` (an order number with an email or postcode that does not match it).
The gateway's ``/metrics`` exports the counts (``storebot_refused_inputs``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import Session, col, func, select

from core.models import RefusedInput, utcnow

log = logging.getLogger(__name__)
KINDS = ("csat_not_due", "rec_feedback_not_shown", "order_proof_failed")


def refuse(session: Session, kind: str, conversation_id: str) -> None:
    """Record one refused input (committed with the caller's session)."""
    if kind not in KINDS:
        raise ValueError(f"unknown refusal kind {kind!r}")
    session.add(RefusedInput(kind=kind, conversation_id=conversation_id[:255]))
    log.info("refused %s in conversation %s", kind, conversation_id[:64])


def recent_refusals(session: Session, conversation_id: str, kind: str, within: timedelta) -> int:
    """How many refusals of ``kind`` the conversation had in the last ``within``."""
    query = select(func.count()).select_from(RefusedInput).where(
        RefusedInput.conversation_id == conversation_id, RefusedInput.kind == kind,
        col(RefusedInput.created_at) >= utcnow() - within,
    )  # fmt: skip
    return int(session.exec(query).one())


def refusal_counts(session: Session) -> dict[str, int]:
    """Refusals of each kind since the beginning (every kind present, zeros included)."""
    rows = session.exec(select(RefusedInput.kind, func.count()).group_by(RefusedInput.kind)).all()
    return {**dict.fromkeys(KINDS, 0), **{str(k): int(n) for k, n in rows}}
