"""FAQ retrieval benchmark: ``python -m benchmarks.faq [--sections stackfaq,scale] [--folds 5]``.

Sections (tables printed; results in benchmarks/results/faq.json):

- ``stackfaq``: StackFAQ (../shared/data/faq): 125 FAQs (question + answers), 1,249 paraphrased
  queries each labelled with its FAQ. Every query is ranked against all 125 FAQs with the
  product's own index (an entry = its question vector, dense score = cosine; BM25 over
  question and answers). Metrics per query, averaged: NDCG@10, P@1, MRR@10, Hit@5.
  Zero-shot (no query seen in training): BM25, dense (all-MiniLM-L6-v2), hybrid (RRF).
  Trained: the embedder fine-tuned with MultipleNegativesRankingLoss on (query, FAQ question)
  paraphrase pairs,
  **split by FAQ**: k folds over the FAQs; the model that scores a query never saw any query
  of that query's FAQ. Scores pool all folds, so every query is counted once.
- ``scale``: 10,000 entries (Bitext customer-service utterances with their answers) indexed
  with a progress bar; build time, then top-5 latency (p50/p95/p99) over 300 queries, one at a
  time, on the HNSW index.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import percentile, table, write_results
from core.settings import ROOT
from nlu.faq.embedder import Embedder, load_embedder
from nlu.faq.finetune import Pair, finetune
from nlu.faq.index import DENSE_WEIGHT, Doc, HybridIndex, Method, build_index

log = logging.getLogger("bench.faq")
SWEEP = (0.5, 0.7, 0.8)  # the product uses DENSE_WEIGHT (0.9) under the name "hybrid"


class CachedEncoder:
    """Remembers query embeddings, so several methods and weights score the same queries cheaply."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.dim, self.cache = inner, inner.dim, {}  # type: ignore[var-annotated]

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Cached single texts; batches (index building) go straight through."""
        if len(texts) != 1:
            return self.inner.encode(texts, batch_size=batch_size, progress=progress)
        if texts[0] not in self.cache:
            self.cache[texts[0]] = self.inner.encode(texts)
        return self.cache[texts[0]]


def load_stackfaq(data: Path) -> tuple[list[Doc], list[tuple[str, str]]]:
    """FAQs as index documents, and (query, faq_id) pairs."""
    docs = []
    with (data / "faq" / "stackfaq_faqs.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            docs.append(Doc(id=row["faq_id"], question=row["question"], answer=" ".join(row["answers"])))
    with (data / "faq" / "stackfaq_queries.csv").open(encoding="utf-8") as f:
        queries = [(r["query"], r["faq_id"]) for r in csv.DictReader(f)]
    return docs, queries


def rank_metrics(ranked: list[str], gold: str) -> dict[str, float]:
    """NDCG@10, P@1, MRR@10 and Hit@5 for one query with one relevant FAQ."""
    rank = ranked.index(gold) + 1 if gold in ranked else 0
    return {
        "ndcg@10": 1 / math.log2(rank + 1) if 0 < rank <= 10 else 0.0,
        "p@1": float(rank == 1),
        "mrr@10": 1 / rank if 0 < rank <= 10 else 0.0,
        "hit@5": float(0 < rank <= 5),
    }


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric."""
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0]}


def score(index: HybridIndex, queries: list[tuple[str, str]], method: Method) -> list[dict[str, float]]:
    """Per-query metrics of one method."""
    return [rank_metrics([h.doc.id for h in index.search(q, k=10, method=method)], gold) for q, gold in queries]


def folds_by_faq(docs: list[Doc], k: int, seed: int = 13) -> list[set[str]]:
    """k disjoint sets of FAQ ids."""
    ids = [d.id for d in docs]
    random.Random(seed).shuffle(ids)
    return [set(ids[i::k]) for i in range(k)]


def bench_stackfaq(data: Path, folds: int, epochs: int) -> dict[str, Any]:
    """Zero-shot methods, then the fine-tuned embedder under k-fold cross-validation by FAQ."""
    docs, queries = load_stackfaq(data)
    base = CachedEncoder(load_embedder())
    index = build_index(docs, base)
    results: dict[str, Any] = {
        "protocol": f"{len(queries)} StackFAQ queries ranked against all {len(docs)} FAQs (question + answers); "
        "metrics averaged over queries",
        "methods": {},
    }
    for method in ("bm25", "dense", "hybrid"):
        results["methods"][method] = {**average(score(index, queries, method)), "training": "none"}
        log.info("%s: %s", method, results["methods"][method])
    for weight in SWEEP:  # weighted RRF: the share of the dense ranking
        index.weights = {"dense": weight, "bm25": 1 - weight}
        results["methods"][f"hybrid, dense weight {weight}"] = {
            **average(score(index, queries, "hybrid")),
            "training": "none",
        }
    if folds < 2:
        return results
    question = {d.id: d.question for d in docs}
    pooled: dict[str, list[dict[str, float]]] = {"dense-ft": [], "hybrid-ft": []}
    started = time.time()
    for i, test_ids in enumerate(folds_by_faq(docs, folds)):
        pairs: list[Pair] = [(q, question[f], f) for q, f in queries if f not in test_ids]
        out = Path(tempfile.mkdtemp(prefix=f"faq-ft-{i}-"))
        model = CachedEncoder(Embedder(finetune(pairs, out, epochs=epochs)))
        fold_index = build_index(docs, model, dense_weight=DENSE_WEIGHT)
        test = [(q, f) for q, f in queries if f in test_ids]
        pooled["dense-ft"] += score(fold_index, test, "dense")
        pooled["hybrid-ft"] += score(fold_index, test, "hybrid")
        log.info("fold %d/%d: %d train pairs, %d test queries", i + 1, folds, len(pairs), len(test))
    training = f"MNRL fine-tune, {epochs} epochs, {folds}-fold split by FAQ (test FAQs' queries never trained on)"
    for name, rows in pooled.items():
        results["methods"][name] = {**average(rows), "training": training}
    results["finetune_seconds_all_folds"] = round(time.time() - started)
    return results


def scale_entries(data: Path, n: int) -> list[Doc]:
    """``n`` customer-service entries: Bitext utterances (20k set) with an answer of their intent (4.5k set)."""
    answers: dict[str, list[str]] = {}
    with (data / "bitext" / "bitext_cs_llm_training_4514.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            answers.setdefault(r["intent"], []).append(r["response"])
    rename = {"check_invoices": "check_invoice"}
    docs: list[Doc] = []
    with (data / "bitext" / "bitext_cs_20k_utterances.csv").open(encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f)):
            intent = rename.get(r["intent"], r["intent"])
            if intent in answers and len(docs) < n:
                pool = answers[intent]
                docs.append(Doc(id=f"e{i}", question=r["utterance"], answer=pool[i % len(pool)]))
    return docs


def _latencies(index: HybridIndex, sample: list[str]) -> list[float]:
    for q in sample[:20]:  # warm-up
        index.search(q, k=5)
    times = []
    for q in sample:
        t = time.perf_counter()
        index.search(q, k=5)
        times.append((time.perf_counter() - t) * 1000)
    return times


def bench_scale(data: Path, n: int) -> dict[str, Any]:
    """Index build time for ``n`` entries and top-5 search latency (exact and HNSW dense index)."""
    docs = scale_entries(data, n)
    embedder = load_embedder(onnx_dir=Path(tempfile.mkdtemp(prefix="faq-onnx-")))
    embedder.encode(["warm-up"])  # exports the query graph once, outside the timed build
    started = time.perf_counter()
    index = build_index(docs, embedder, progress=True)
    build = time.perf_counter() - started
    hnsw = HybridIndex(index.docs, index.owners, index.vectors, embedder, ann_min_vectors=0)
    _, queries = load_stackfaq(data)
    sample = [q for q, _ in queries[:: max(1, len(queries) // 300)]][:300]
    result: dict[str, Any] = {"entries": len(docs), "vectors": len(index.vectors), "build_seconds": round(build, 1)}
    for idx in (index, hnsw):
        times = _latencies(idx, sample)
        name = type(idx.dense).__name__
        result[name] = {f"top5_p{q}_ms": round(percentile(times, q), 2) for q in (50, 95, 99)}
    result["protocol"] = (
        f"{len(sample)} StackFAQ queries, one at a time: query embedding (ONNX Runtime) + BM25 + dense index "
        "+ weighted RRF; build = embedding every entry's texts (torch) + BM25 + dense index"
    )
    return result


def main() -> None:
    """Run the sections, print tables, write benchmarks/results/faq.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.faq")
    p.add_argument("--sections", default="stackfaq,scale")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--folds", type=int, default=5, help="k of the split by FAQ (0 = zero-shot methods only)")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs per fold")
    p.add_argument("--entries", type=int, default=10_000, help="size of the scale test")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    results: dict[str, Any] = {}
    sections = set(args.sections.split(","))
    if "stackfaq" in sections:
        results["stackfaq"] = sf = bench_stackfaq(args.data, args.folds, args.epochs)
        keys = ["ndcg@10", "p@1", "mrr@10", "hit@5"]
        rows = [[m, *(r[k] for k in keys), r["training"]] for m, r in sf["methods"].items()]
        rows += [["anchor: BM25 (BERT-FAQ paper)", 0.783, "", "", "", ""]]
        rows += [["anchor: BERT trained on FAQ pairs (BERT-FAQ)", 0.845, "", "", "", ""]]
        print(sf["protocol"])
        print(table(["method", *keys, "training"], rows))
    if "scale" in sections:
        results["scale"] = sc = bench_scale(args.data, args.entries)
        rows = [[sc["entries"], sc["vectors"], sc["build_seconds"], name, *sc[name].values()]
                for name in ("IndexFlatIP", "IndexHNSWFlat")]  # fmt: skip
        print(table(["entries", "vectors", "build s", "dense index", "p50 ms", "p95 ms", "p99 ms"], rows))
    write_results("faq", results, merge=True)


if __name__ == "__main__":
    main()
