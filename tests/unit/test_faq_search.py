"""FAQ import (incremental), hybrid search, confidence decisions and bad queries, on the demo KB."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session, func, select

from core.db import make_engine
from core.models import FaqEntry, FaqVector
from nlu.errors import EmptyKnowledgeBaseError
from nlu.faq import store
from nlu.faq.kb import load_kb, parse_kb
from nlu.faq.policy import Thresholds, decide, tune

DEMO = Path("bot/kb/faq.yml")


def _vectors(session: Session) -> int:
    return session.exec(select(func.count()).select_from(FaqVector)).one()


@pytest.fixture()
def demo_engine(sqlite_url: str, minilm_embedder: Any):  # type: ignore[no-untyped-def]
    engine = make_engine(sqlite_url)
    with Session(engine) as s:
        store.import_kb(s, load_kb(DEMO), minilm_embedder, progress=False)
        s.commit()
    yield engine
    engine.dispose()


def test_reimport_embeds_only_what_changed(demo_engine: Any, minilm_embedder: Any) -> None:
    specs = load_kb(DEMO)
    with Session(demo_engine) as s:
        before = _vectors(s)
        again = store.import_kb(s, specs, minilm_embedder, progress=False)
        assert (again.added, again.updated, again.embedded, again.unchanged) == (0, 0, 0, len(specs))
        edited = [spec if spec.id != "gift-wrapping" else parse_kb(
            "entries:\n  - id: gift-wrapping\n    question: Do you gift wrap?\n    answer: Yes, $2.\n"
        )[0] for spec in specs[:-1]]  # fmt: skip
        report = store.import_kb(s, edited, minilm_embedder, progress=False)
        s.commit()
        assert (report.updated, report.removed, report.embedded) == (1, 1, 1)  # the question of one entry
        assert s.get(FaqEntry, "gift-wrapping").answer == "Yes, $2."  # type: ignore[union-attr]
        assert s.get(FaqEntry, specs[-1].id) is None
        assert _vectors(s) < before


def test_failed_embedding_leaves_the_kb_untouched(demo_engine: Any, minilm_embedder: Any) -> None:
    class Broken:
        name, dim = minilm_embedder.name, minilm_embedder.dim

        def encode(self, texts: list[str], **_: Any) -> np.ndarray:
            raise OSError("out of memory")

    new = parse_kb("entries:\n  - id: new-one\n    question: New?\n    answer: Yes.\n")
    with Session(demo_engine) as s, pytest.raises(OSError):
        store.import_kb(s, new, Broken(), progress=False)  # type: ignore[arg-type]
    with Session(demo_engine) as s:
        assert s.get(FaqEntry, "returns-policy") is None and s.get(FaqEntry, "return-policy") is not None
        assert s.get(FaqEntry, "new-one") is None


def test_new_embedder_reindexes_stale_entries(demo_engine: Any, minilm_embedder: Any, tiny_encoder_dir: Path) -> None:
    from nlu.faq.embedder import load_embedder

    tiny = load_embedder(tiny_encoder_dir, device="cpu")
    assert tiny.name != minilm_embedder.name
    with Session(demo_engine) as s:
        report = store.import_kb(s, load_kb(DEMO), tiny, progress=False)
        s.commit()
        assert report.embedded > 0 and report.updated == 0
        assert len(store.load_index(s, tiny, tiny.name)) == len(load_kb(DEMO))


@pytest.mark.parametrize(
    ("query", "entry"),
    [
        ("how long until I get my money back from a return", "refund-status"),
        ("do you deliver to Germany", "international-shipping"),
        ("which cards can I pay with", "payment-methods"),
        ("the box came smashed and the lamp is broken", "damaged-item"),
        ("I forgot my login password", "reset-password"),
    ],
)
def test_hybrid_search_finds_the_right_entry(demo_engine: Any, minilm_embedder: Any, query: str, entry: str) -> None:
    with Session(demo_engine) as s:
        index = store.load_index(s, minilm_embedder, minilm_embedder.name)
    hits = index.search(query, k=3)
    assert hits[0].doc.id == entry, [h.doc.id for h in hits]
    assert hits[0].cosine > 0.5 and hits[0].ranks


def test_methods_and_bad_queries(demo_engine: Any, minilm_embedder: Any) -> None:
    with Session(demo_engine) as s:
        index = store.load_index(s, minilm_embedder, minilm_embedder.name)
    assert index.search("") == [] and index.search("   \n\t") == []
    assert index.search("shipping " * 20_000, k=2)  # very long: truncated, answered
    bm25 = index.search("gift wrapping", method="bm25")
    assert bm25[0].doc.id == "gift-wrapping" and set(bm25[0].ranks) == {"bm25"}
    assert set(index.search("zzzz qqqq", method="dense")[0].ranks) == {"dense"}
    th = Thresholds()
    for foreign in ["¿Cuál es la capital de Francia?", "今日の天気はどうですか", "🙂🙂🙂", "asdkjh qwpoe zmxn"]:
        assert decide(index.search(foreign), th).action != "answer", foreign
    assert decide(index.search("what is your return policy"), th).action == "answer"
    assert index.best_with_intent("money back please", "get_refund").doc.id == "how-to-return"  # type: ignore[union-attr]
    assert index.best_with_intent("hi", "no_such_intent") is None


def test_empty_kb_is_a_typed_error(sqlite_url: str, minilm_embedder: Any) -> None:
    with Session(make_engine(sqlite_url)) as s, pytest.raises(EmptyKnowledgeBaseError, match=r"nlu\.faq import"):
        store.load_index(s, minilm_embedder, minilm_embedder.name)


def test_tune_meets_the_precision_and_oos_budget() -> None:
    rng = np.random.default_rng(0)
    in_conf = rng.uniform(0.3, 0.95, 400)
    in_top1 = in_conf + rng.normal(0, 0.1, 400) > 0.55  # confident queries are mostly right
    oos = rng.uniform(0.1, 0.6, 100)
    th = tune(in_conf, in_top1, oos, precision=0.9, max_oos_accept=0.1)
    taken = np.concatenate([in_conf, oos]) >= th.answer
    right = np.concatenate([in_top1, np.zeros(100, bool)])
    assert right[taken].mean() >= 0.9 and right[np.concatenate([in_conf, oos]) >= th.answer - 0.05].mean() < 0.9
    assert (oos >= th.suggest).mean() <= 0.1 + 1e-9 and th.suggest <= th.answer


def test_thresholds_round_trip_and_defaults(tmp_path: Path) -> None:
    assert Thresholds.load(tmp_path / "none.json") == Thresholds()
    Thresholds(0.7, 0.4, "x").save(tmp_path / "t.json")
    assert Thresholds.load(tmp_path / "t.json") == Thresholds(0.7, 0.4, "x")
    (tmp_path / "bad.json").write_text("{")
    assert Thresholds.load(tmp_path / "bad.json") == Thresholds()
