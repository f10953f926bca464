"""Recommendation outcomes: impressions, click-through and conversion, overall and per source.

A click is a ``rec_click`` event carrying the impression's request id. A conversion is a
purchase of a shown product by the same customer within ``window`` after it was shown.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.models import BehaviourEvent, RecImpression


def recommendation_stats(session: Session, since: datetime, window: timedelta = timedelta(days=7)) -> dict[str, Any]:
    """CTR and conversion of the cards shown since ``since``, in total and by source."""
    shown = list(session.exec(select(RecImpression).where(col(RecImpression.shown_at) >= since)))
    customers = {i.customer_id for i in shown}
    events = list(
        session.exec(
            select(BehaviourEvent).where(
                col(BehaviourEvent.customer_id).in_(customers),
                col(BehaviourEvent.kind).in_(("rec_click", "purchase")),
                col(BehaviourEvent.ts) >= since,
            )
        )
    ) if customers else []  # fmt: skip
    clicked = {(e.session_id, e.product_id) for e in events if e.kind == "rec_click"}
    bought: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for e in events:
        if e.kind == "purchase":
            bought[(e.customer_id, e.product_id)].append(e.ts)
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for i in shown:
        converted = any(i.shown_at <= t <= i.shown_at + window for t in bought.get((i.customer_id, i.product_id), []))
        for key in ("all", i.source):
            g = groups[key]
            g[0] += 1
            g[1] += (i.request_id, i.product_id) in clicked
            g[2] += converted
    return {
        key: {"impressions": n, "clicks": c, "ctr": round(c / n, 4) if n else 0.0,
              "conversions": b, "conversion_rate": round(b / n, 4) if n else 0.0}
        for key, (n, c, b) in sorted(groups.items())
    }  # fmt: skip
