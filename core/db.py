"""Database engine factory, sessions and migrations (Alembic)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from core.settings import ROOT, get_settings

log = logging.getLogger(__name__)
MIGRATIONS = ROOT / "core" / "migrations"


def make_engine(url: str) -> Engine:
    """Build an engine; SQLite files get WAL and a busy timeout for concurrent writers."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """The shared engine for ``url`` (default: the app database), created on first use."""
    url = url or get_settings().app_db_url
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or get_engine()) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


def upgrade(url: str | None = None) -> None:
    """Apply all Alembic migrations to ``url`` (default: the app database)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().app_db_url).replace("%", "%%"))
    if (url or "").startswith("sqlite") or not url:
        make_engine(url or get_settings().app_db_url).dispose()  # creates the parent dir
    command.upgrade(cfg, "head")
    log.info("database schema is at head")


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python -m core.db upgrade [--url URL]``."""
    parser = argparse.ArgumentParser(prog="python -m core.db")
    parser.add_argument("command", choices=["upgrade"])
    parser.add_argument("--url", default=None, help="database URL (default: settings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    upgrade(args.url)


if __name__ == "__main__":
    main()
