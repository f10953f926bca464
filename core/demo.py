"""The demo store's customers and orders (idempotent seed): ``python -m core.demo``.

Orders 100234-100239 belong to c-ana (ana@example.com, postcode SW1A 1AA), c-ben (ben@example.com,
10115) and c-cho (cho@example.com, 75002): an anonymous visitor sees one after naming its email or
postcode; a web chat signed in as its customer sees it at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from core.db import get_engine, session_scope
from core.models import Customer, Order

log = logging.getLogger(__name__)


def _orders(now: datetime) -> list[Order]:
    day = timedelta(days=1)
    postcode = {"c-ana": "SW1A 1AA", "c-ben": "10115", "c-cho": "75002"}
    rows = [
        ("100234", "c-ana", "shipped", "Trail running shoes", 89.90, "UPS", now + 2 * day),
        ("100235", "c-ana", "delivered", "Rain jacket", 120.00, "DHL", now - 3 * day),
        ("100236", "c-ben", "placed", "Espresso machine", 249.00, None, now + 5 * day),
        ("100237", "c-ben", "packed", "Coffee grinder, 2 filters", 64.50, "UPS", now + 3 * day),
        ("100238", "c-cho", "cancelled", "Yoga mat", 25.00, None, None),
        ("100239", "c-cho", "shipped", "Wireless headphones", 159.00, "FedEx", now + 1 * day),
    ]
    return [
        Order(id=i, customer_id=c, status=s, items=it, total=t, carrier=ca, eta=e, placed_at=now - 4 * day,
              postcode=postcode[c])
        for i, c, s, it, t, ca, e in rows
    ]  # fmt: skip


def seed(engine: Engine | None = None) -> int:
    """Insert the demo customers and orders that are missing; returns rows added."""
    now = datetime.now(UTC).replace(microsecond=0)
    customers = [
        Customer(id="c-ana", name="Ana Silva", email="ana@example.com"),
        Customer(id="c-ben", name="Ben Okafor", email="ben@example.com"),
        Customer(id="c-cho", name="Cho Min-jun", email="cho@example.com"),
    ]
    added = 0
    with session_scope(engine or get_engine()) as s:
        for row in [*customers, *_orders(now)]:
            if s.get(type(row), row.id) is None:  # type: ignore[attr-defined]
                s.add(row)
                s.flush()
                added += 1
    log.info("demo data: %d rows added", added)
    return added


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    seed()
