"""Catalog and behaviour-event import: validation, all-or-nothing, duplicates, histories."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from core.db import make_engine
from core.models import BehaviourEvent, Product
from recommender.errors import DataError
from recommender.events import histories, import_events, import_products, parse_time, record_event

CATALOG = "id,name,category,price,in_stock\np1,Tent,Camping,120,true\np2,Lamp,Camping,20,true\np3,Mug,Kitchen,8,false\n"
EVENTS = (
    "customer_id,product_id,kind,timestamp,session_id,value\n"
    "c1,p2,view,2026-01-01T10:05:00,s1,\n"
    "c1,p1,view,2026-01-01T10:00:00Z,s1,\n"  # out of order: sorted by time in histories
    "c1,p1,cart,2026-01-01T10:01:00,s1,\n"
    "c2,p3,rating,1767261600,s9,4\n"
)


@pytest.fixture()
def session(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(sqlite_url)
    (tmp_path / "catalog.csv").write_text(CATALOG)
    with Session(engine) as s:
        import_products(s, tmp_path / "catalog.csv")
        s.commit()
        yield s
    engine.dispose()


def _count(session: Session) -> int:
    return session.exec(select(func.count()).select_from(BehaviourEvent)).one()


def test_import_orders_by_time_and_skips_duplicates(session: Session, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS + "c1,p2,view,2026-01-01T10:05:00+00:00,s1,\n")  # same event again
    report = import_events(session, path)
    assert (report.rows, report.added, report.duplicates) == (5, 4, 1)
    assert import_events(session, path).added == 0  # re-import adds nothing
    assert histories(session) == {"c1": ["p1", "p2"], "c2": ["p3"]}  # p1 view+cart collapsed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("c1,p9,view,2026-01-01T10:00:00,s1,", "events.csv:6: unknown product 'p9'"),
        ("c1,p1,wishlist,2026-01-01T10:00:00,s1,", "events.csv:6: kind 'wishlist'"),
        ("c1,p1,view,yesterday,s1,", "events.csv:6: timestamp 'yesterday'"),
        ("c1,p1,rating,2026-01-01T10:00:00,s1,", "events.csv:6: a rating needs a numeric value"),
        (",p1,view,2026-01-01T10:00:00,s1,", "events.csv:6: customer_id must be"),
    ],
)
def test_bad_row_is_named_and_nothing_is_imported(session: Session, tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENTS + line + "\n")
    with pytest.raises(DataError, match=message):
        import_events(session, path)
    assert _count(session) == 0


def test_missing_column_and_bad_catalog(session: Session, tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("customer_id,product_id,timestamp\nc1,p1,2026-01-01\n")
    with pytest.raises(DataError, match=r"missing column.*kind"):
        import_events(session, tmp_path / "e.csv")
    (tmp_path / "p.csv").write_text("id,name,category,price\np4,Chair,Home,cheap\n")
    with pytest.raises(DataError, match=r"p\.csv:2: price 'cheap' is not a number"):
        import_products(session, tmp_path / "p.csv")
    (tmp_path / "d.csv").write_text("id,name,category,price\np4,Chair,Home,1\np4,Chair,Home,2\n")
    with pytest.raises(DataError, match="appears twice"):
        import_products(session, tmp_path / "d.csv")
    assert session.get(Product, "p4") is None


def test_catalog_reimport_updates(session: Session, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("id,name,category,price,in_stock\np3,Mug,Kitchen,9.5,true\n")
    assert import_products(session, tmp_path / "c.csv").added == 0
    mug = session.get(Product, "p3")
    assert mug is not None and mug.price == 9.5 and mug.in_stock


def test_record_event_from_chat(session: Session) -> None:
    assert record_event(session, customer_id="c5", product_id="p1", kind="rec_click", session_id="r1")
    with pytest.raises(DataError, match="unknown event kind"):
        record_event(session, customer_id="c5", product_id="p1", kind="like")
    assert histories(session) == {"c5": ["p1"]}
    assert histories(session, kinds=("purchase",)) == {}


def test_parse_time_forms() -> None:
    assert parse_time("1767261600").isoformat() == "2026-01-01T10:00:00+00:00"
    assert parse_time("2026-01-01T12:00:00+02:00").isoformat() == "2026-01-01T10:00:00+00:00"
    assert parse_time("2026-01-01 10:00").tzinfo is not None
