"""The background job of the stack: ``python -m monitoring.worker [--once] [--interval S]``.

Today it keeps the ``turn`` table in step with Rasa's tracker store; the
sentiment detectors hook in here.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from sqlalchemy.exc import SQLAlchemyError

from core.db import get_engine
from core.settings import get_settings
from monitoring.ingest import ingest_all

log = logging.getLogger(__name__)


def run_forever(interval: float, stop: threading.Event) -> None:
    """Ingest every ``interval`` seconds until ``stop`` is set; database errors are retried."""
    s = get_settings()
    tracker, app = get_engine(s.tracker_db_url), get_engine(s.app_db_url)
    while not stop.is_set():
        try:
            ingest_all(tracker, app)
        except SQLAlchemyError as exc:
            log.warning("ingest failed, retrying in %.0f s: %s", interval, exc.__class__.__name__)
        stop.wait(interval)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m monitoring.worker")
    p.add_argument("--once", action="store_true", help="ingest what is there, then exit (for cron)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between passes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.once:
        s = get_settings()
        n = ingest_all(get_engine(s.tracker_db_url), get_engine(s.app_db_url))
        log.info("ingested %d turns", n)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_forever(args.interval, stop)


if __name__ == "__main__":
    main()
