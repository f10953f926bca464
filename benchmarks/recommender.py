"""Recommender benchmark: ``python -m benchmarks.recommender [--sections ml1m,video,latency]``.

Protocol (every data set): leave-one-out — each user's last item is the test target, the
second-last the validation target (early stopping), the rest is training. Every model is
evaluated in the same run on the same split:

- ``full``: the target ranked against all items, items already in the user's history excluded
  (the SASRec+ / gSASRec protocol; the goal is stated on this one);
- ``full_unfiltered``: history items left in the ranking;
- ``sampled100``: against 100 uniformly sampled unseen items (the SASRec paper's protocol,
  optimistic; reported for comparison only).

Models: popularity, item-KNN (cosine, recency-weighted), GRU and SASRec, both trained with
full-softmax cross-entropy (recommender/config.yml; on ``video``, 23,715 items, cross-entropy over
3,000 sampled negatives per batch). Data: ../shared/data (ml-1m, sasrec_video).
``demo`` runs the same models on the demo store's simulator (the lift over popularity) and
scores purchase intent (AUC on the newest 20 % of sessions against the number of views).
``latency`` times top-10 through the whole recommender service (database, model, rules, new
products, reasons) with 100,000 products, one request at a time.
Results: benchmarks/results/recommender.json.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import percentile, table, write_results
from core.settings import ROOT, get_settings
from recommender.baselines import ItemKNN, Popularity
from recommender.evaluate import Scorer, evaluate
from recommender.fit import NetScorer, fit, load_config
from recommender.nets import NetConfig, build_net
from recommender.sequences import leave_one_out, read_pairs_file, validation_view

log = logging.getLogger("bench.recommender")
DATASETS: dict[str, tuple[str, dict[str, Any]]] = {
    "ml1m": ("ml-1m/sequences.txt", {"max_len": 200}),
    # 23,715 items: cross-entropy over 3,000 sampled negatives per batch (SASRec+'s "3000" variant), ~6x less
    # work per epoch than the full softmax on 2 cores
    "video": ("sasrec_video/Video.txt", {"max_len": 50, "negatives": 3000}),
}
ANCHORS = {
    "ml1m": "SASRec+ (RecSys 2023) full NDCG@10 0.1857 / HR@10 0.3159; SASRec paper sampled HR@10 0.8245",
    "video": "SASRec paper (Amazon Games) sampled HR@10 0.7410 / NDCG@10 0.5360",
}


def bench_dataset(
    name: str, data_dir: Path, models: list[str], epochs: int, limit: int, on_model: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """All models on one public data set, same split, same run."""
    rel, overrides = DATASETS[name]
    sequences = read_pairs_file(data_dir / rel)[: limit or None]
    return bench_sequences(name, sequences, models, epochs, overrides, on_model=on_model)


def bench_sequences(
    name: str,
    sequences: list[list[int]],
    models: list[str],
    epochs: int,
    overrides: dict[str, Any],
    on_model: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """All models on the given item sequences, same leave-one-out split, same run.

    ``on_model`` receives the results so far after each model (a long run keeps what it finished).
    """
    split = leave_one_out(sequences)
    out: dict[str, Any] = {
        "users": len(sequences),
        "items": split.n_items,
        "interactions": sum(map(len, sequences)),
        "protocol": "leave-one-out; full = all items ranked, seen excluded; sampled100 = 100 uniform unseen",
        "models": {},
    }
    for model in models:
        started = time.time()
        scorer: Scorer
        extra: dict[str, Any] = {}
        if model == "popularity":
            scorer = Popularity(split.train, split.n_items)
        elif model == "itemknn":
            scorer = ItemKNN(split.train, split.n_items)
        else:
            cfg = load_config(kind=model, epochs=epochs, **overrides)
            result = fit(split.train, validation_view(split), split.n_items, cfg)
            scorer = NetScorer(result.net)
            extra = {
                "best_epoch": result.best_epoch,
                "epochs_run": result.epochs_run,
                "valid_ndcg@10": result.best_ndcg,
                "config": {
                    k: cfg[k]
                    for k in (
                        "dim",
                        "blocks",
                        "heads",
                        "dropout",
                        "max_len",
                        "negatives",
                        "lr",
                        "lr_decay",
                        "lr_patience",
                    )
                },
            }
        seconds = time.time() - started
        metrics = evaluate(scorer, split.test_inputs, split.test_targets, split.n_items, progress=True)
        out["models"][model] = {**metrics, "train_seconds": round(seconds), **extra}
        log.info("%s %s: %s (%.0f s)", name, model, metrics, seconds)
        if on_model is not None:
            on_model(out)
    return out


def bench_demo(models: list[str], epochs: int, customers: int = 400) -> dict[str, Any]:
    """The demo store's simulator: the lift over popularity, and purchase intent against its baseline.

    Histories are built exactly as the bot builds them (views, carts, purchases in time order,
    repeats in a row collapsed); purchase intent is trained on the older 80 % of sessions and
    scored by AUC on the newest 20 %.
    """
    from recommender.events import collapse_repeats
    from recommender.intent import Event, session_rows, train_intent
    from recommender.sequences import Vocabulary
    from recommender.simulate import catalog_rows, simulate

    events = simulate(customers, 12, seed=11, start=datetime(2026, 9, 1, tzinfo=UTC))
    raw: dict[str, list[str]] = {}
    for e in events:
        raw.setdefault(e["customer_id"], []).append(e["product_id"])
    by_customer = {c: collapse_repeats(products) for c, products in raw.items()}
    vocab = Vocabulary(sorted({p for seq in by_customer.values() for p in seq}))
    out = bench_sequences("demo", [vocab.encode(s) for s in by_customer.values()], models, epochs, {"max_len": 50})
    products = {r["id"]: r for r in catalog_rows()}
    rows = session_rows([
        Event(e["customer_id"], e["product_id"], e["kind"], datetime.fromisoformat(e["timestamp"]), e["session_id"],
              products[e["product_id"]]["category"].split(" | ")[0], float(products[e["product_id"]]["price"]))
        for e in events
    ])  # fmt: skip
    out["purchase_intent"] = train_intent(rows).metrics
    return out


class _RandomEncoder:
    """Stands in for the sentence embedder when only the serving cost matters (random unit vectors)."""

    def __init__(self, dim: int = 384) -> None:
        self.dim, self.rng = dim, np.random.default_rng(0)

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_latency(n_items: int = 100_000, customers: int = 300) -> dict[str, Any]:
    """Top-10 through the whole service with ``n_items`` products, one request at a time.

    A temporary SQLite shop with ``n_items`` products (10 % newer than the model, so the
    new-product slot is searched), 300 customers with 1-50 past events each; an untrained
    SASRec over the other 90 %, 20 item-KNN neighbours per item, popularity, and random
    384-dimensional content vectors (the embedder's cost is paid at catalog load, not per
    request). Each request reads the customer's events, scores every item, applies the rules,
    searches the new products and writes the reasons.
    """
    from scipy import sparse
    from sqlalchemy import insert
    from sqlmodel import Session

    from core.db import make_engine, upgrade
    from core.models import Product
    from recommender.artifacts import Bundle, save_bundle
    from recommender.events import insert_events
    from recommender.sequences import Vocabulary
    from recommender.service import RecommenderService

    work = Path(tempfile.mkdtemp(prefix="bench-rec-latency-"))
    url = f"sqlite:///{work / 'app.db'}"
    upgrade(url)
    engine = make_engine(url)
    rng = np.random.default_rng(0)
    ids = [f"P{i:06d}" for i in range(n_items)]
    known = int(n_items * 0.9)
    now = datetime.now(UTC)
    with Session(engine) as s:
        s.execute(insert(Product), [
            {"id": p, "name": f"Product {i}", "category": f"Dept{i % 20} | type{i % 200}", "price": float(5 + i % 500),
             "url": "", "description": "", "in_stock": i % 20 != 0, "created_at": now}
            for i, p in enumerate(ids)
        ])  # fmt: skip
        insert_events(s, [
            {"customer_id": f"c{c}", "product_id": ids[int(j)], "kind": "view", "ts": now.replace(microsecond=n),
             "session_id": "", "value": None, "source": "import"}
            for c in range(customers) for n, j in enumerate(rng.integers(0, known, size=int(rng.integers(1, 51))))
        ])  # fmt: skip
        s.commit()
    torch.manual_seed(0)
    vocab = Vocabulary(ids[:known])
    net = build_net(NetConfig(kind="sasrec", n_items=known, max_len=200)).eval()
    rows = np.repeat(np.arange(1, known + 1), 20)
    knn = sparse.csr_matrix(
        (rng.random(len(rows)).astype(np.float32), (rows, rng.integers(1, known + 1, size=len(rows)))),
        shape=(known + 1, known + 1),
    )
    save_bundle(work / "models", Bundle("bench", vocab, net, knn, rng.random(known + 1), {}))
    service = RecommenderService(
        engine=engine, model_root=work / "models", encoder_factory=_RandomEncoder, reload_seconds=1e9
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(get_settings().rec_threads or threads)  # as the action server runs it
    service.refresh(force=True)
    times = []
    for i in range(customers + 20):
        started = time.perf_counter()
        service.recommend(f"c{i % customers}", 10)
        if i >= 20:
            times.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    torch.set_num_threads(threads)
    return {
        "items": n_items,
        "torch_threads": get_settings().rec_threads or threads,
        "requests": len(times),
        "p50_ms": round(percentile(times, 50), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "p99_ms": round(percentile(times, 99), 2),
    }


def main() -> None:
    """Run the chosen sections, print tables, write benchmarks/results/recommender.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.recommender")
    p.add_argument("--sections", default="ml1m,latency")
    p.add_argument("--models", default="popularity,itemknn,gru,sasrec")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="public data sets")
    p.add_argument("--epochs", type=int, default=200, help="max epochs (early stopping, patience in config)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N users (smoke runs)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    results: dict[str, Any] = {}
    sections = args.sections.split(",")
    for name in [s for s in sections if s in DATASETS]:

        def keep(partial: dict[str, Any], name: str = name) -> None:
            if not args.limit:
                write_results("recommender", {name: partial}, merge=True)

        results[name] = r = bench_dataset(name, args.data, args.models.split(","), args.epochs, args.limit, keep)
        rows = [
            [m, v["full"]["ndcg@10"], v["full"]["hr@10"], v["full_unfiltered"]["ndcg@10"],
             v["sampled100"]["hr@10"], v["sampled100"]["ndcg@10"], v["train_seconds"], v.get("best_epoch", "")]
            for m, v in r["models"].items()
        ]  # fmt: skip
        print(f"{name}: {r['users']} users, {r['items']} items; {ANCHORS.get(name, '')}")
        print(table(["model", "NDCG@10", "HR@10", "NDCG@10 unfiltered", "HR@10 s100", "NDCG@10 s100",
                     "train s", "best epoch"], rows))  # fmt: skip
    if "demo" in sections:
        results["demo"] = r = bench_demo(args.models.split(","), args.epochs)
        rows = [[m, v["full"]["ndcg@10"], v["full"]["hr@10"], v["train_seconds"]] for m, v in r["models"].items()]
        print(f"demo store simulator: {r['users']} customers, {r['items']} products")
        print(table(["model", "NDCG@10", "HR@10", "train s"], rows))
        pi = r["purchase_intent"]
        print(table(["purchase intent", "held-out sessions", "purchase rate", "AUC", "AUC baseline (views)"],
                    [["logistic regression", pi["heldout_sessions"], pi["purchase_rate"], pi["auc"],
                      pi["auc_baseline_views"]]]))  # fmt: skip
    if "latency" in sections:
        results["latency"] = lat = bench_latency()
        print(
            table(
                ["items", "p50 ms", "p95 ms", "p99 ms"], [[lat["items"], lat["p50_ms"], lat["p95_ms"], lat["p99_ms"]]]
            )
        )
    if args.limit:
        log.warning("--limit %d: a smoke run, results not written", args.limit)
        return
    write_results("recommender", results, merge=True)


if __name__ == "__main__":
    main()
