"""Throw-away databases on the local PostgreSQL server (127.0.0.1:5432, trust auth), for benchmarks and tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

PG_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/postgres"


def postgres_available() -> bool:
    """Whether the PostgreSQL server on 127.0.0.1:5432 answers."""
    try:
        engine = create_engine(PG_ADMIN)
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def scratch_url(name: str, port: int = 5432) -> str:
    """The URL of database ``name`` on the local server, or through a proxy listening on ``port``."""
    return f"postgresql+psycopg://root@127.0.0.1:{port}/{name}"


@contextmanager
def scratch_databases(prefix: str, count: int = 1) -> Iterator[list[str]]:
    """``count`` new, empty databases named ``<prefix>_<random>``, dropped afterwards (open sessions too);
    yields their names."""
    names = [f"{prefix}_{uuid.uuid4().hex[:8]}" for _ in range(count)]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            for n in names:
                c.execute(text(f'CREATE DATABASE "{n}"'))
        yield names
    finally:
        with admin.connect() as c:
            for n in names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_pg_database(prefix: str = "storebot_t") -> Iterator[str]:
    """One new, empty database on the local server, dropped afterwards; yields its URL."""
    with scratch_databases(prefix) as (name,):
        yield scratch_url(name)
