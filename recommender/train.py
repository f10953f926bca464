"""Train the recommender from the behaviour events in the database: ``python -m recommender.train``.

Steps: 1 read config · 2 read each customer's history from the database · 3 hold out each
customer's last item for validation · 4 train the sequence model with early stopping (skipped
when there is too little data) · 5 item-KNN, popularity and purchase intent on the full data · 6 write a
new bundle with a model card and switch ``current`` to it (a running bot picks it up).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session

from core.db import get_engine
from core.settings import get_settings
from recommender.artifacts import Bundle, save_bundle
from recommender.baselines import ItemKNN, Popularity
from recommender.errors import RecommenderError
from recommender.evaluate import evaluate
from recommender.events import histories
from recommender.fit import NetScorer, fit, load_config
from recommender.intent import SessionRow, load_events, session_rows, train_intent
from recommender.sequences import Vocabulary

log = logging.getLogger(__name__)
MIN_CUSTOMERS_FOR_MODEL = 20  # fewer customers with 3+ items: item-KNN and popularity only


def train(
    histories_by_customer: dict[str, list[str]],
    cfg: dict[str, Any],
    out_root: Path,
    sessions: list[SessionRow] | None = None,
) -> Path:
    """Train on product-id histories (and purchase intent on ``sessions``); save a bundle under ``out_root``."""
    vocab = Vocabulary(sorted({p for seq in histories_by_customer.values() for p in seq}))
    sequences = [vocab.encode(seq) for seq in histories_by_customer.values()]
    if not vocab.n_items:
        raise RecommenderError("no behaviour events yet: import some (`python -m recommender import-events FILE`)")
    log.info("2/6 %d customers, %d products, %d events", len(sequences), vocab.n_items, sum(map(len, sequences)))
    holdout = [i for i, s in enumerate(sequences) if len(s) >= 3]
    held = set(holdout)
    train_seqs = [s[:-1] if i in held else s for i, s in enumerate(sequences)]
    valid = ([sequences[i][:-1] for i in holdout], [sequences[i][-1] for i in holdout])
    log.info("3/6 %d customers hold out their last item for validation", len(holdout))
    card: dict[str, Any] = {"customers": len(sequences), "products": vocab.n_items, "config": cfg}
    net = None
    if len(holdout) >= MIN_CUSTOMERS_FOR_MODEL:
        log.info("4/6 training %s", cfg["kind"])
        result = fit(train_seqs, valid, vocab.n_items, cfg)
        net = result.net
        card |= {"best_epoch": result.best_epoch, "train_seconds": round(result.seconds), "history": result.history}
        card["validation"] = {
            "protocol": "each customer's last item held out, full ranking, seen items excluded",
            cfg["kind"]: evaluate(NetScorer(net), *valid, vocab.n_items, sampled=0)["full"],
            "popularity": evaluate(Popularity(train_seqs, vocab.n_items), *valid, vocab.n_items, sampled=0)["full"],
        }
        log.info("validation: %s", card["validation"])
    else:
        log.info("4/6 only %d customers with 3+ items: no sequence model yet (item-KNN and popularity)", len(holdout))
    log.info("5/6 item-KNN, popularity and purchase intent")
    knn = ItemKNN(sequences, vocab.n_items).sim
    popularity = Popularity(sequences, vocab.n_items).counts
    intent = None
    try:
        intent = train_intent(sessions) if sessions else None
    except ValueError as exc:
        log.info("no purchase-intent model: %s", exc)
    if intent is not None:
        card["purchase_intent"] = intent.metrics | {"threshold": intent.threshold}
        log.info("purchase intent: %s", card["purchase_intent"])
    version = time.strftime("%Y%m%d-%H%M%S")
    out = save_bundle(out_root, Bundle(version, vocab, net, knn, popularity, card, intent))
    log.info("6/6 saved %s and made it current", out)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m recommender.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None, help="bundle root (default: REC_MODEL_DIR)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        overrides = dict(_parse_override(kv) for kv in args.set)
    except ValueError as exc:
        p.error(str(exc))
    cfg = load_config(**overrides)
    log.info("1/6 config: %s", cfg)
    settings = get_settings()
    try:
        with Session(get_engine()) as s:
            seqs = histories(s)
            sessions = session_rows(load_events(s))
        train(seqs, cfg, args.out or settings.rec_model_dir, sessions)
    except RecommenderError as exc:
        log.error("%s", exc)
        return 2
    return 0


def _parse_override(kv: str) -> tuple[str, Any]:
    key, sep, value = kv.partition("=")
    if not sep or key not in load_config():
        raise ValueError(f"--set {kv!r}: expected KEY=VALUE with KEY one of {', '.join(load_config())}")
    return key, yaml.safe_load(value)


if __name__ == "__main__":
    sys.exit(main())
