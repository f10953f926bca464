"""Business metrics of the bot over a window of days, from the app database.

Definitions (every count is per UTC day; a window's totals use the same rules):

- **conversations**: distinct Rasa sender ids with at least one user turn (``turn``, copied from
  the tracker store by the monitor, so every channel counts, REST included);
- **handoff rate**: conversations with a handoff opened / conversations; **containment** is
  1 - handoff rate (the bot handled it alone); reasons and outcomes from ``handoff``;
- **fallback rate**: user turns whose intent is ``nlu_fallback`` / user turns;
- **negative share** (the sentiment trend): user turns scored negative / user turns scored;
- **CSAT**: the mean 1–5 rating after a handoff (``csat_rating``) and its distribution;
- **FAQ helpfulness**: "helpful" answers / FAQ feedback given;
- **recommendations**: impressions (cards shown), click-through = chat clicks (``rec_click``:
  "more like this" or "add to cart") / impressions, conversion = impressions whose product the
  same customer bought within ``CONVERSION_DAYS`` after seeing it / impressions;
- **intent mix** and the **alert history** (incidents opened in the window).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import median
from typing import Any

from sqlalchemy import case, distinct, func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import AlertIncident, BehaviourEvent, CsatRating, FaqFeedback, Handoff, RecImpression, Turn

CONVERSION_DAYS = 7
MAX_DAYS = 366
INTENTS_SHOWN = 12


class BadWindow(ValueError):
    """The requested window is not a valid range of days."""


@dataclass
class Dashboard:
    """Totals, one value per day for each trend, and the breakdown tables of a window."""

    start: date
    end: date  # inclusive
    days: list[str]
    totals: dict[str, float | int | None]
    daily: dict[str, list[float | None]]  # metric -> one value per day (None: no data that day)
    handoff_reasons: list[tuple[str, int]] = field(default_factory=list)
    handoff_outcomes: list[tuple[str, int]] = field(default_factory=list)
    csat_distribution: list[tuple[str, int]] = field(default_factory=list)
    intent_mix: list[tuple[str, int]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per day (for the CSV export)."""
        return [{"day": d, **{k: v[i] for k, v in self.daily.items()}} for i, d in enumerate(self.days)]


def window(days: int, today: date | None = None) -> tuple[date, date]:
    """The last ``days`` days up to and including ``today`` (UTC)."""
    if not 1 <= days <= MAX_DAYS:
        raise BadWindow(f"days must be between 1 and {MAX_DAYS}, got {days}")
    end = today or datetime.now(UTC).date()
    return end - timedelta(days=days - 1), end


def _ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 4) if num is not None and den else None


def _day_sql(dialect: str) -> Callable[[Any], Any]:
    """SQL for the UTC calendar day of a timestamp column (PostgreSQL's date() would use the session time zone)."""
    if dialect == "postgresql":
        return lambda stamp: func.date(func.timezone("UTC", stamp))
    return lambda stamp: func.date(stamp)


def _day(value: Any) -> str:
    """``func.date`` gives a string on SQLite and a date on PostgreSQL."""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def build(engine: Engine, start: date, end: date) -> Dashboard:
    """Every metric of the days ``start``..``end`` (inclusive, UTC)."""
    if end < start or (end - start).days >= MAX_DAYS:
        raise BadWindow(f"the window must be 1 to {MAX_DAYS} days with start ≤ end (got {start} .. {end})")
    lo = datetime.combine(start, time.min, tzinfo=UTC)
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    day = _day_sql(engine.dialect.name)
    with Session(engine) as s:
        turns = _turns(s, day, lo, hi)
        handoffs = _handoffs(s, day, lo, hi)
        csat = _per_day(s, day, CsatRating.created_at, [func.count(), func.avg(CsatRating.rating)], lo, hi)
        faq = _per_day(s, day, FaqFeedback.created_at,
                       [func.count(), func.sum(case((col(FaqFeedback.helpful), 1), else_=0))], lo, hi)  # fmt: skip
        recs = _recommendations(s, day, lo, hi)
        conversations = s.exec(
            select(func.count(distinct(col(Turn.sender_id)))).where(Turn.timestamp >= lo, Turn.timestamp < hi)
        ).one()
        handed_off = s.exec(
            select(func.count(distinct(col(Handoff.conversation_id))))
            .where(Handoff.created_at >= lo, Handoff.created_at < hi)
        ).one()  # fmt: skip
        reasons = _group(s, Handoff.reason, Handoff.created_at, lo, hi)
        outcomes = _group(s, Handoff.state, Handoff.created_at, lo, hi)
        ratings = _group(s, CsatRating.rating, CsatRating.created_at, lo, hi)
        intents = _group(s, Turn.intent, Turn.timestamp, lo, hi)
        waits = [
            (c - o).total_seconds()
            for o, c in s.exec(select(Handoff.created_at, Handoff.claimed_at).where(
                Handoff.created_at >= lo, Handoff.created_at < hi, col(Handoff.claimed_at).is_not(None)))
            if c is not None
        ]  # fmt: skip
        incidents = list(s.exec(select(AlertIncident).where(AlertIncident.opened_at >= lo, AlertIncident.opened_at < hi)
                                .order_by(col(AlertIncident.opened_at).desc())))  # fmt: skip

    def series(table: dict[str, tuple[Any, ...]], pick: Any) -> list[float | None]:
        return [pick(table[d]) if d in table else None for d in days]

    daily: dict[str, list[float | None]] = {
        "user_turns": series(turns, lambda r: r[0]),
        "conversations": series(turns, lambda r: r[1]),
        "handoffs": series(handoffs, lambda r: r[0]),
        "handoff_rate": [_ratio(h, c) if c else None for h, c in
                         zip(series(handoffs, lambda r: r[1]), series(turns, lambda r: r[1]), strict=True)],
        "fallback_rate": series(turns, lambda r: _ratio(r[2], r[0])),
        "negative_share": series(turns, lambda r: _ratio(r[3], r[4])),
        "csat": series(csat, lambda r: round(float(r[1]), 2) if r[1] is not None else None),
        "faq_helpful": series(faq, lambda r: _ratio(r[1], r[0])),
        "rec_impressions": [recs["impressions"].get(d, 0) if recs["impressions"] else None for d in days],
        "rec_ctr": [_ratio(recs["clicks"].get(d, 0), recs["impressions"].get(d)) for d in days],
        "rec_conversion": [_ratio(recs["converted"].get(d, 0), recs["impressions"].get(d)) for d in days],
        "alerts": [sum(1 for i in incidents if i.opened_at.date().isoformat() == d) for d in days],
    }  # fmt: skip
    # a handoff whose turns the monitor has not copied yet could make a rate exceed 1: clamp
    daily["containment"] = [None if r is None else round(max(0.0, 1 - r), 4) for r in daily["handoff_rate"]]
    totals_turns = [sum(r[i] or 0 for r in turns.values()) for i in range(5)]
    impressions = sum(recs["impressions"].values())
    csat_n = sum(n for _, n in ratings)
    totals: dict[str, float | int | None] = {
        "conversations": conversations,
        "user_turns": totals_turns[0],
        "handoffs": sum(n for _, n in outcomes),
        "handoff_rate": _ratio(handed_off, conversations),
        "containment": None if not conversations else round(max(0.0, 1 - handed_off / conversations), 4),
        "fallback_rate": _ratio(totals_turns[2], totals_turns[0]),
        "negative_share": _ratio(totals_turns[3], totals_turns[4]),
        "csat": round(sum(int(r) * n for r, n in ratings) / csat_n, 2) if csat_n else None,
        "csat_ratings": csat_n,
        "faq_helpful": _ratio(sum(r[1] or 0 for r in faq.values()), sum(r[0] for r in faq.values())),
        "median_wait_to_claim_s": round(median(waits)) if waits else None,
        "rec_impressions": impressions,
        "rec_ctr": _ratio(sum(recs["clicks"].values()), impressions),
        "rec_conversion": _ratio(sum(recs["converted"].values()), impressions),
        "alerts": len(incidents),
    }
    top = intents[:INTENTS_SHOWN]
    rest = sum(n for _, n in intents[INTENTS_SHOWN:])
    return Dashboard(
        start, end, days, totals, daily,
        handoff_reasons=[(str(k), n) for k, n in reasons], handoff_outcomes=[(str(k), n) for k, n in outcomes],
        csat_distribution=[(str(k), n) for k, n in sorted(ratings)],
        intent_mix=[(str(k or "(none)"), n) for k, n in top] + ([("(other intents)", rest)] if rest else []),
        alerts=[{"id": i.id, "state": i.state, "opened_at": i.opened_at.isoformat(timespec="minutes"),
                 "resolved_at": i.resolved_at.isoformat(timespec="minutes") if i.resolved_at else "",
                 "topics": ", ".join(sorted(_topics(i))), "acked_by": i.acked_by or ""} for i in incidents],
    )  # fmt: skip


def _topics(incident: AlertIncident) -> list[str]:
    return [str(t) for t in json.loads(incident.topics or "[]")]


def _turns(s: Session, utc_day: Callable[[Any], Any], lo: datetime, hi: datetime) -> dict[str, tuple[Any, ...]]:
    """Per day: user turns, conversations, fallbacks, negative turns, turns with a sentiment."""
    day = utc_day(Turn.timestamp)
    where = (col(Turn.timestamp) >= lo, col(Turn.timestamp) < hi)
    volume = s.exec(select(day, func.count(), func.count(distinct(col(Turn.sender_id)))).where(*where).group_by(day))
    signals = s.exec(
        select(
            day, func.sum(case((col(Turn.intent) == "nlu_fallback", 1), else_=0)),
            func.sum(case((col(Turn.sentiment) == "negative", 1), else_=0)), func.count(col(Turn.sentiment)),
        ).where(*where).group_by(day)
    )  # fmt: skip
    extra = {_day(d): (fb, neg, scored) for d, fb, neg, scored in signals}
    return {_day(d): (n, conv, *extra.get(_day(d), (0, 0, 0))) for d, n, conv in volume}


def _handoffs(s: Session, utc_day: Callable[[Any], Any], lo: datetime, hi: datetime) -> dict[str, tuple[Any, ...]]:
    """Per day: handoffs opened, conversations handed off."""
    day = utc_day(Handoff.created_at)
    rows = s.exec(
        select(day, func.count(), func.count(distinct(col(Handoff.conversation_id))))
        .where(Handoff.created_at >= lo, Handoff.created_at < hi).group_by(day)
    )  # fmt: skip
    return {_day(d): (n, conv) for d, n, conv in rows}


def _per_day(
    s: Session, utc_day: Callable[[Any], Any], stamp: Any, aggregates: list[Any], lo: datetime, hi: datetime
) -> dict[str, tuple[Any, ...]]:
    day = utc_day(stamp)
    rows = s.exec(select(day, *aggregates).where(stamp >= lo, stamp < hi).group_by(day))
    return {_day(r[0]): tuple(r[1:]) for r in rows}


def _group(s: Session, column: Any, stamp: Any, lo: datetime, hi: datetime) -> list[tuple[Any, int]]:
    """(value, count) of ``column`` in the window, most frequent first."""
    rows = s.exec(select(column, func.count()).where(stamp >= lo, stamp < hi).group_by(column))
    return sorted(((v, int(n)) for v, n in rows), key=lambda r: (-r[1], str(r[0])))


def _recommendations(
    s: Session, utc_day: Callable[[Any], Any], lo: datetime, hi: datetime
) -> dict[str, dict[str, int]]:
    """Per day of the impression: impressions, clicks (by click day) and converted impressions."""
    shown = list(s.exec(select(RecImpression.customer_id, RecImpression.product_id, RecImpression.shown_at)
                        .where(RecImpression.shown_at >= lo, RecImpression.shown_at < hi)))  # fmt: skip
    clicks = s.exec(
        select(utc_day(BehaviourEvent.ts), func.count())
        .where(BehaviourEvent.kind == "rec_click", BehaviourEvent.ts >= lo, BehaviourEvent.ts < hi)
        .group_by(utc_day(BehaviourEvent.ts))
    )  # fmt: skip
    bought: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    customers = sorted({c for c, _, _ in shown})
    for i in range(0, len(customers), 500):  # bounded IN lists
        for c, p, ts in s.exec(
            select(BehaviourEvent.customer_id, BehaviourEvent.product_id, BehaviourEvent.ts).where(
                BehaviourEvent.kind == "purchase", BehaviourEvent.ts >= lo,
                BehaviourEvent.ts < hi + timedelta(days=CONVERSION_DAYS),
                col(BehaviourEvent.customer_id).in_(customers[i : i + 500]))
        ):  # fmt: skip
            bought[(c, p)].append(ts)
    impressions: Counter[str] = Counter()
    converted: Counter[str] = Counter()
    horizon = timedelta(days=CONVERSION_DAYS)
    for c, p, at in shown:
        d = at.date().isoformat()
        impressions[d] += 1
        if any(at <= ts < at + horizon for ts in bought.get((c, p), [])):
            converted[d] += 1
    return {"impressions": dict(impressions), "clicks": {_day(d): int(n) for d, n in clicks},
            "converted": dict(converted)}  # fmt: skip
