"""The hybrid recommender: fallbacks for new customers and products, the rules, reasons, hot reload."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from core.db import make_engine
from core.models import Product
from recommender.events import histories, import_events, import_products, record_event
from recommender.rules import Constraints
from recommender.service import RecommenderService
from recommender.simulate import catalog_rows, simulate, write_csv
from recommender.train import train

TINY = {"kind": "sasrec", "dim": 16, "blocks": 1, "heads": 1, "dropout": 0.0, "max_len": 20, "negatives": 0,
        "batch_size": 32, "lr": 5e-3, "epochs": 4, "patience": 4, "eval_every": 1, "seed": 1}  # fmt: skip


@pytest.fixture()
def engine(sqlite_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    eng = make_engine(sqlite_url)
    write_csv(tmp_path / "catalog.csv", catalog_rows())
    write_csv(tmp_path / "events.csv", simulate(40, 6, seed=3, start=datetime(2026, 9, 1, tzinfo=UTC)))
    with Session(eng) as s:
        import_products(s, tmp_path / "catalog.csv")
        import_events(s, tmp_path / "events.csv")
        s.commit()
    yield eng
    eng.dispose()


def _service(engine, root: Path, encoder=None) -> RecommenderService:  # type: ignore[no-untyped-def]
    return RecommenderService(engine=engine, model_root=root, encoder_factory=encoder, reload_seconds=0)


def _train(engine, root: Path) -> Path:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return train(histories(s), dict(TINY), root)


def test_before_any_training_popularity_is_counted_live(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    recs = _service(engine, tmp_path / "models").recommend("someone-new", k=3)
    assert len(recs) == 3 and {r.source for r in recs} == {"popularity"}
    assert recs[0].reason == "Popular with our customers" and recs[0].score >= recs[-1].score


def test_personal_cards_differ_and_skip_what_was_seen(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _train(engine, tmp_path / "models")
    service = _service(engine, tmp_path / "models")
    a, b = service.recommend("cust0001", k=4), service.recommend("cust0002", k=4)
    assert {r.source for r in a} == {"sequence"} and all(r.reason for r in a)
    assert [r.product_id for r in a] != [r.product_id for r in b]
    with Session(engine) as s:
        seen = set(histories(s)["cust0001"])
    assert not seen & {r.product_id for r in a}
    assert {r.source for r in service.recommend("unknown-customer", k=2)} == {"popularity"}


def test_rules_stock_price_category_dismissed(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _train(engine, tmp_path / "models")
    service = _service(engine, tmp_path / "models")
    first = service.recommend("cust0003", k=1)[0]
    with Session(engine) as s:
        record_event(s, customer_id="cust0003", product_id=first.product_id, kind="rec_dismiss")
        s.commit()
    assert first.product_id not in {r.product_id for r in service.recommend("cust0003", k=5)}
    cheap = service.recommend("cust0003", k=5, constraints=Constraints(max_price=30))
    assert cheap and all(r.price <= 30 for r in cheap)
    garden = service.recommend("cust0003", k=5, constraints=Constraints(category="garden"))
    assert garden and all("Garden" in r.category for r in garden)
    with Session(engine) as s:
        for r in garden:
            product = s.get(Product, r.product_id)
            assert product is not None
            product.in_stock = False
            s.add(product)
        s.commit()
    service.refresh(force=True)
    again = service.recommend("cust0003", k=5, constraints=Constraints(category="garden"))
    assert not {r.product_id for r in garden} & {r.product_id for r in again}


def test_more_like_this_and_new_products(engine, tmp_path: Path, minilm_embedder) -> None:  # type: ignore[no-untyped-def]
    _train(engine, tmp_path / "models")
    service = _service(engine, tmp_path / "models", encoder=lambda: minilm_embedder)
    like = service.recommend("cust0004", k=3, constraints=Constraints(like="CAM-01V"))
    assert like[0].reason == "Similar to Value two-person tent" and "CAM-01V" not in {r.product_id for r in like}
    with Session(engine) as s:
        hist = histories(s)["cust0004"]
        anchor = s.get(Product, hist[-1])
        assert anchor is not None
        s.add(Product(id="NEW-1", name=anchor.name + " Pro", category=anchor.category, price=anchor.price,
                      description=anchor.description))  # fmt: skip
        s.commit()
    service.refresh(force=True)
    recs = service.recommend("cust0004", k=3)
    assert recs[-1].product_id == "NEW-1" and recs[-1].reason.startswith("New in the store")
    # a customer whose only history is the new product: content similarity
    with Session(engine) as s:
        record_event(s, customer_id="fresh", product_id="NEW-1", kind="view")
        s.commit()
    assert {r.source for r in service.recommend("fresh", k=3)} == {"content"}


def test_a_retrained_model_is_picked_up(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _train(engine, tmp_path / "models")
    service = _service(engine, tmp_path / "models")
    service.recommend("cust0001")
    assert service.version == first.name
    (tmp_path / "models" / "current").write_text("missing-version")  # a broken switch keeps the old model
    service.recommend("cust0001")
    assert service.version == first.name
    second = tmp_path / "models" / "v2"
    shutil.copytree(first, second)
    (tmp_path / "models" / "current").write_text("v2")
    service.recommend("cust0001")
    assert service.version == "v2"
