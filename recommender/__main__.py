"""Recommender CLI: ``python -m recommender COMMAND``.

Commands: ``import-products FILE`` · ``import-events FILE`` · ``demo`` (import the shipped demo
catalog and behaviour log) · ``train [--set KEY=VALUE]`` · ``recommend CUSTOMER [--k N]
[--category C] [--max-price P] [--like PRODUCT]`` · ``stats [--days N]`` (click-through and
conversion of the cards shown). Exit code 2 on bad input, nothing written.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import get_engine
from core.settings import get_settings
from recommender import train
from recommender.errors import RecommenderError
from recommender.events import import_events, import_products
from recommender.rules import Constraints

log = logging.getLogger("recommender")
DEMO_DIR = Path(__file__).with_name("demo")


def import_demo(engine: Engine | None = None) -> tuple[int, int]:
    """Import the shipped demo catalog and behaviour log (idempotent) into ``engine`` (default: the app
    database); (products added, events added)."""
    with Session(engine or get_engine()) as s:
        products = import_products(s, DEMO_DIR / "catalog.csv").added
        events = import_events(s, DEMO_DIR / "events.csv").added
        s.commit()
    return products, events


def _recommend(args: argparse.Namespace) -> None:
    from nlu.faq.embedder import load_embedder
    from recommender.service import RecommenderService

    settings = get_settings()
    service = RecommenderService(engine=get_engine(), model_root=settings.rec_model_dir, encoder_factory=load_embedder)
    c = Constraints(category=args.category, max_price=args.max_price, like=args.like)
    for r in service.recommend(args.customer, args.k, c):
        sys.stdout.write(f"{r.product_id:10} {r.name:40} {r.price:8.2f}  [{r.source}] {r.reason}\n")


def _stats(days: int) -> None:
    from datetime import UTC, datetime, timedelta

    from recommender.report import recommendation_stats

    with Session(get_engine()) as s:
        stats = recommendation_stats(s, datetime.now(UTC) - timedelta(days=days))
    sys.stdout.write(f"{'source':12} {'shown':>7} {'clicks':>7} {'CTR':>7} {'bought':>7} {'conv.':>7}\n")
    for source, r in stats.items():
        sys.stdout.write(f"{source:12} {r['impressions']:7} {r['clicks']:7} {r['ctr']:7.2%} {r['conversions']:7} "
                         f"{r['conversion_rate']:7.2%}\n")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        return train.main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m recommender", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("import-products", "import-events"):
        sub.add_parser(name).add_argument("file", type=Path)
    sub.add_parser("demo", help="import the demo catalog and behaviour log")
    sub.add_parser("train", help="train from the events in the database (see python -m recommender.train -h)")
    rec = sub.add_parser("recommend")
    rec.add_argument("customer")
    rec.add_argument("--k", type=int, default=5)
    rec.add_argument("--category")
    rec.add_argument("--max-price", type=float)
    rec.add_argument("--like", help="a product id: more like this")
    stats = sub.add_parser("stats", help="click-through and conversion of the cards shown")
    stats.add_argument("--days", type=int, default=30)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            log.info("demo data: %d products and %d events added", *import_demo())
        elif args.command == "recommend":
            _recommend(args)
        elif args.command == "stats":
            _stats(args.days)
        else:
            with Session(get_engine()) as s:
                importer = import_products if args.command == "import-products" else import_events
                report = importer(s, args.file)
                s.commit()
            log.info("%s: %d rows, %d added, %d already there", args.file, report.rows, report.added,
                     report.duplicates)  # fmt: skip
    except RecommenderError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
