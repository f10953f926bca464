"""Hyper-parameter grid for the behaviour model: ``python -m benchmarks.recommender_grid``.

Each variant is the shipped ``recommender/config.yml`` with a few keys changed, trained on the
leave-one-out split of ``benchmarks.recommender`` (same data, same protocols), once per seed.
Variants run side by side in worker processes (``--jobs``; on a GPU they share the card).

Selection protocol: variants are ranked by their mean **validation** NDCG@10 (full ranking, seen
items excluded), never by a test figure; test metrics are reported beside each, so the shipped
configuration changes only when validation says so and the test figure of the pick is unbiased.
Training times are only comparable between runs with ``--jobs 1`` (alone on the device).

Results: ``benchmarks/results/recommender_grid.json`` (``--out`` to write elsewhere), rewritten
after every finished job, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, machine, table, write_results
from benchmarks.recommender import DATASETS
from core.settings import ROOT

log = logging.getLogger("bench.recommender_grid")
# name → config keys changed from recommender/config.yml (plus the data set's own: benchmarks.recommender.DATASETS)
VARIANTS: dict[str, dict[str, Any]] = {
    "shipped": {},
    "gru": {"kind": "gru"},
    "dropout0.2": {"dropout": 0.2},
    "dropout0.3": {"dropout": 0.3},
    "dropout0.5": {"dropout": 0.5},
    "lr1e-3": {"lr": 1e-3},
    "lr1e-3+dropout0.2": {"lr": 1e-3, "dropout": 0.2},
    "sasrecplus-batches": {"lr": 1e-3, "bucket": False},  # SASRec+'s random batches and learning rate
    "dim128+dropout0.2": {"dim": 128, "dropout": 0.2},
    "dim128+dropout0.3+heads2": {"dim": 128, "dropout": 0.3, "heads": 2},
    "blocks3+dropout0.2": {"blocks": 3, "dropout": 0.2},
    "wd0.1": {"weight_decay": 0.1},
    "original-blocks": {"layout": "original"},
    "start-positions": {"positions": "start"},
    "sasrecplus-model": {"layout": "original", "positions": "start"},  # SASRec+'s network, our training
    "full-softmax": {"negatives": 0},
    "full-softmax+dropout0.3": {"negatives": 0, "dropout": 0.3},
    "full-softmax+dropout0.5": {"negatives": 0, "dropout": 0.5},
}


@dataclass(frozen=True)
class Job:
    """One training run: a variant of the config on a data set with one seed."""

    dataset: str
    variant: str
    seed: int
    data_dir: str
    epochs: int
    limit: int
    max_seconds: float
    threads: int


def run_job(job: Job) -> dict[str, Any]:
    """Train and evaluate one variant (runs in a worker process)."""
    import torch

    from recommender.evaluate import evaluate
    from recommender.fit import NetScorer, fit, load_config
    from recommender.sequences import leave_one_out, read_pairs_file, validation_view

    torch.set_num_threads(job.threads)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s [{job.variant}/{job.seed}] %(name)s: %(message)s")
    rel, data_overrides = DATASETS[job.dataset]
    sequences = read_pairs_file(Path(job.data_dir) / rel)[: job.limit or None]
    split = leave_one_out(sequences)
    cfg = load_config(
        **{**data_overrides, **VARIANTS[job.variant]}, seed=job.seed, epochs=job.epochs, max_seconds=job.max_seconds
    )
    result = fit(split.train, validation_view(split), split.n_items, cfg)
    device = next(result.net.parameters()).device
    test = evaluate(NetScorer(result.net), split.test_inputs, split.test_targets, split.n_items)
    return {
        "variant": job.variant,
        "seed": job.seed,
        "changes": VARIANTS[job.variant],
        "valid_ndcg@10": result.best_ndcg,
        "test": test,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 1),
        "seconds_per_epoch": round(result.seconds / max(1, result.epochs_run), 2),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "time_limited": bool(job.max_seconds) and result.seconds >= job.max_seconds,
    }


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per variant (means over seeds), best mean validation NDCG@10 first."""
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_variant.setdefault(r["variant"], []).append(r)
    rows = []
    for variant, rs in by_variant.items():
        test_ndcg = [r["test"]["full"]["ndcg@10"] for r in rs]
        rows.append(
            {
                "variant": variant,
                "seeds": len(rs),
                "valid_ndcg@10": round(statistics.fmean(r["valid_ndcg@10"] for r in rs), 4),
                "test_ndcg@10": round(statistics.fmean(test_ndcg), 4),
                "test_ndcg@10_sd": round(statistics.stdev(test_ndcg), 4) if len(rs) > 1 else None,
                "test_hr@10": round(statistics.fmean(r["test"]["full"]["hr@10"] for r in rs), 4),
                "test_hr@10_s100": round(statistics.fmean(r["test"]["sampled100"]["hr@10"] for r in rs), 4),
                "best_epoch": round(statistics.fmean(r["best_epoch"] for r in rs)),
                "seconds_per_epoch": round(statistics.fmean(r["seconds_per_epoch"] for r in rs), 2),
                "train_seconds": round(statistics.fmean(r["train_seconds"] for r in rs)),
                "time_limited": any(r["time_limited"] for r in rs),
            }
        )
    return sorted(rows, key=lambda r: -r["valid_ndcg@10"])


HEADERS = ["variant", "seeds", "valid NDCG@10", "test NDCG@10", "sd", "test HR@10", "HR@10 s100", "best epoch",
           "s/epoch", "train s"]  # fmt: skip
ROW_KEYS = ["variant", "seeds", "valid_ndcg@10", "test_ndcg@10", "test_ndcg@10_sd", "test_hr@10", "test_hr@10_s100",
            "best_epoch", "seconds_per_epoch", "train_seconds"]  # fmt: skip


def print_table(dataset: str, rows: list[dict[str, Any]]) -> None:
    """The summary as a Markdown table."""
    print(f"{dataset}: variants by mean validation NDCG@10 (full ranking, seen items excluded)")
    cells = [["" if r[k] is None else r[k] for k in ROW_KEYS] for r in rows]
    for row, r in zip(cells, rows, strict=True):
        row[-1] = f"{row[-1]}{' (time limit)' if r['time_limited'] else ''}"
    print(table(HEADERS, cells))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options, validated."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.recommender_grid", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="ml1m")
    p.add_argument("--variants", default="shipped,dropout0.2,lr1e-3", help=f"comma list of: {', '.join(VARIANTS)}")
    p.add_argument("--seeds", default="42", help="comma list of seeds, each variant runs once per seed")
    p.add_argument("--jobs", type=int, default=1, help="training runs side by side (worker processes)")
    p.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 8), help="torch threads per job")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="public data sets")
    p.add_argument("--epochs", type=int, default=200, help="max epochs (early stopping, patience in config)")
    p.add_argument("--max-seconds", type=float, default=0, help="stop a job's training after this long (0 = none)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N users (smoke runs)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "recommender_grid.json")
    p.add_argument("--section", default="", help="section name in the results file (default: the data set)")
    args = p.parse_args(argv)
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds {args.seeds!r}: expected a comma list of integers")
    if args.jobs < 1 or args.threads < 1:
        p.error("--jobs and --threads must be at least 1")
    if not (args.data / DATASETS[args.dataset][0]).is_file():
        p.error(f"{args.data / DATASETS[args.dataset][0]} not found (see docs/BENCHMARKS.md for the data sets)")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the grid, print the table, write the results file."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    jobs = [
        Job(args.dataset, v, s, str(args.data), args.epochs, args.limit, args.max_seconds, args.threads)
        for s in args.seed_list
        for v in args.variants.split(",")
    ]
    section = args.section or args.dataset
    runs: list[dict[str, Any]] = []
    started = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[dict[str, Any]], Job] = {pool.submit(run_job, j): j for j in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                job = pending.pop(fut)
                try:
                    runs.append(fut.result())
                except Exception:
                    log.exception("%s seed %d failed", job.variant, job.seed)
                    continue
                log.info("%s seed %d done (%d of %d)", job.variant, job.seed, len(runs), len(jobs))
                # each section carries its machine: sections of one file may come from different machines
                write_results("recommender_grid", {section: {
                    "machine": machine(), "dataset": args.dataset, "jobs": args.jobs, "threads": args.threads,
                    "limit": args.limit,
                    "protocol": "leave-one-out; variants ranked by mean validation NDCG@10 (full, seen excluded); "
                    "test = full ranking, seen excluded, and 100 sampled negatives",
                    "wall_seconds": round(time.time() - started), "summary": summarise(runs), "runs": runs,
                }}, merge=True, path=args.out)  # fmt: skip
    if runs:
        print_table(args.dataset, summarise(runs))
    else:
        raise SystemExit("no job finished (see the log above)")


if __name__ == "__main__":
    main()
