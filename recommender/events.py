"""Behaviour events and the catalog in the database: CSV import, recording, and per-customer histories.

CSV formats (UTF-8, header row):

- products: ``id,name,category,price[,url,description,in_stock]``
- events: ``customer_id,product_id,kind,timestamp[,session_id,value]`` where kind is one of
  :data:`IMPORT_KINDS` and timestamp is ISO 8601 (UTC when no offset) or Unix seconds.

An import validates every row first and writes nothing when one is wrong (the error names
the file and row). Re-importing the same export adds nothing: an event is identified by
customer, product, kind and time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from core.csvfile import read_rows
from core.models import BehaviourEvent, Product
from recommender.errors import DataError

IMPORT_KINDS = ("view", "cart", "purchase", "rating")
CHAT_KINDS = ("rec_click", "rec_dismiss")
POSITIVE_KINDS = ("view", "cart", "purchase", "rating", "rec_click")  # what the sequence model learns from
PRODUCT_COLUMNS = ("id", "name", "category", "price")
EVENT_COLUMNS = ("customer_id", "product_id", "kind", "timestamp")


@dataclass
class ImportReport:
    """What an import did."""

    rows: int
    added: int

    @property
    def duplicates(self) -> int:
        """Rows that were already stored (or repeated in the file)."""
        return self.rows - self.added


def parse_time(raw: str) -> datetime:
    """ISO 8601 (naive = UTC) or Unix seconds, as an aware UTC datetime."""
    raw = raw.strip()
    if raw.replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(raw), UTC)
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _product_row(path: Path, n: int, row: dict[str, str]) -> dict[str, Any]:
    where = f"{path}:{n}"
    pid, name = (row.get("id") or "").strip(), (row.get("name") or "").strip()
    if not pid or len(pid) > 64:
        raise DataError(f"{where}: id must be 1-64 characters")
    if not name:
        raise DataError(f"{where}: name is empty")
    try:
        price = float(row["price"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: price {row.get('price')!r} is not a number") from None
    if price < 0:
        raise DataError(f"{where}: price is negative")
    stock = (row.get("in_stock") or "true").strip().lower()
    if stock not in ("true", "false", "1", "0", "yes", "no"):
        raise DataError(f"{where}: in_stock {stock!r} is not true/false")
    return {
        "id": pid, "name": name[:300], "category": (row.get("category") or "").strip()[:200], "price": price,
        "url": (row.get("url") or "").strip()[:1000], "description": (row.get("description") or "").strip()[:4000],
        "in_stock": stock in ("true", "1", "yes"),
    }  # fmt: skip


def import_products(session: Session, path: Path) -> ImportReport:
    """Insert or update the products of a catalog CSV (all rows or none)."""
    rows = [_product_row(path, n, row) for n, row in read_rows(path, PRODUCT_COLUMNS, DataError)]
    seen: set[str] = set()
    for n, row in enumerate(rows, start=2):
        if row["id"] in seen:
            raise DataError(f"{path}:{n}: product id {row['id']!r} appears twice")
        seen.add(row["id"])
    existing = {p.id: p for p in session.exec(select(Product).where(col(Product.id).in_(seen)))}
    for row in rows:
        if row["id"] in existing:
            for key, value in row.items():
                setattr(existing[row["id"]], key, value)
        else:
            session.add(Product(**row))
    session.flush()
    return ImportReport(rows=len(rows), added=len(rows) - len(existing))


def _event_row(path: Path, n: int, row: dict[str, str], products: set[str]) -> dict[str, Any]:
    where = f"{path}:{n}"
    customer, product = (row.get("customer_id") or "").strip(), (row.get("product_id") or "").strip()
    kind = (row.get("kind") or "").strip().lower()
    if not customer or len(customer) > 64:
        raise DataError(f"{where}: customer_id must be 1-64 characters")
    if product not in products:
        raise DataError(f"{where}: unknown product {product!r} (import the catalog first)")
    if kind not in IMPORT_KINDS:
        raise DataError(f"{where}: kind {kind!r} is not one of {', '.join(IMPORT_KINDS)}")
    try:
        ts = parse_time(row.get("timestamp") or "")
    except (ValueError, OverflowError, OSError):
        raise DataError(f"{where}: timestamp {row.get('timestamp')!r} is neither ISO 8601 nor Unix seconds") from None
    value = None
    if kind == "rating":
        try:
            value = float(row.get("value") or "")
        except ValueError:
            raise DataError(f"{where}: a rating needs a numeric value") from None
    session_id = (row.get("session_id") or "").strip()[:64]
    return {
        "customer_id": customer, "product_id": product, "kind": kind, "ts": ts, "session_id": session_id,
        "value": value, "source": "import",
    }  # fmt: skip


def import_events(session: Session, path: Path) -> ImportReport:
    """Import a behaviour-event CSV: every row validated first, duplicates skipped, all or nothing."""
    products = set(session.exec(select(Product.id)))
    rows = [_event_row(path, n, row, products) for n, row in read_rows(path, EVENT_COLUMNS, DataError)]
    return ImportReport(rows=len(rows), added=insert_events(session, rows))


def insert_events(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert event rows, skipping any already stored; returns how many were added."""
    batch = list(rows)
    if not batch:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    added = 0
    for start in range(0, len(batch), 1000):
        stmt = insert(BehaviourEvent).values(batch[start : start + 1000]).on_conflict_do_nothing()
        added += session.execute(stmt).rowcount  # type: ignore[attr-defined]
    return added


def record_event(
    session: Session, *, customer_id: str, product_id: str, kind: str, session_id: str = "", source: str = "chat"
) -> bool:
    """Store one event from the running shop or chat now; False if it was already stored."""
    if kind not in IMPORT_KINDS + CHAT_KINDS:
        raise DataError(f"unknown event kind {kind!r}")
    row = {
        "customer_id": customer_id, "product_id": product_id, "kind": kind, "ts": datetime.now(UTC),
        "session_id": session_id, "value": None, "source": source,
    }  # fmt: skip
    return insert_events(session, [row]) == 1


def histories(session: Session, kinds: tuple[str, ...] = POSITIVE_KINDS) -> dict[str, list[str]]:
    """Each customer's products in time order (ties by insertion), repeats in a row collapsed."""
    stmt = (
        select(BehaviourEvent.customer_id, BehaviourEvent.product_id)
        .where(col(BehaviourEvent.kind).in_(kinds))
        .order_by(col(BehaviourEvent.customer_id), col(BehaviourEvent.ts), col(BehaviourEvent.id))
    )
    by_customer: dict[str, list[str]] = {}
    for customer, product in session.exec(stmt):
        by_customer.setdefault(customer, []).append(product)
    return {customer: collapse_repeats(products) for customer, products in by_customer.items()}


def collapse_repeats(products: Iterable[str]) -> list[str]:
    """The products in order with repeats in a row kept once (view, cart, purchase of one product → one step)."""
    out: list[str] = []
    for product in products:
        if not out or out[-1] != product:
            out.append(product)
    return out


@dataclass
class Activity:
    """What one customer did: the positive history in time order, what they bought and dismissed."""

    history: list[str]
    purchased: set[str]
    dismissed: set[str]


def customer_activity(session: Session, customer_id: str, limit: int = 500) -> Activity:
    """The customer's newest ``limit`` events, summarised for the recommender."""
    stmt = (
        select(BehaviourEvent.product_id, BehaviourEvent.kind)
        .where(BehaviourEvent.customer_id == customer_id)
        .order_by(col(BehaviourEvent.ts).desc(), col(BehaviourEvent.id).desc())
        .limit(limit)
    )
    rows = list(session.exec(stmt))[::-1]
    return Activity(
        history=collapse_repeats(p for p, k in rows if k in POSITIVE_KINDS),
        purchased={p for p, k in rows if k == "purchase"},
        dismissed={p for p, k in rows if k == "rec_dismiss"},
    )
