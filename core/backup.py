"""Backup and restore: ``python -m core.backup create FILE`` / ``restore FILE``.

A backup is one gzip file of JSON lines, portable between SQLite and PostgreSQL: a header
(format, schema revision, row count per table), then every row of every application table and
of Rasa's tracker events (``events``, from the tracker database when that is a separate one).
Values keep their types (times with their zone, bytes as base64).

``restore`` writes into a database whose tables are empty (or, with ``--replace``, empties
them first): it migrates the target to the schema, inserts everything in one transaction per
database, moves PostgreSQL's id sequences past the restored ids and checks the counts against
the header. A failure rolls back: nothing is half restored. A backup is taken at the current
schema revision (``python -m core.db upgrade`` first).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, func, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from tqdm import tqdm

import core.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.db import make_engine, upgrade
from core.errors import CoreError
from core.settings import get_settings

log = logging.getLogger(__name__)
FORMAT = "storebot-backup"
VERSION = 1
BATCH = 1000

# Rasa 3.6's SQL tracker store table (rasa/core/tracker_store.py), so a restore can create it.
_TRACKER = MetaData()
RASA_EVENTS = Table(
    "events", _TRACKER,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)  # fmt: skip


class BackupError(CoreError):
    """The backup file or the target database is not usable; the message says why."""


@dataclass(frozen=True)
class Header:
    """The first line of a backup."""

    revision: str
    tables: dict[str, int]
    created: str

    def line(self) -> str:
        """The header as a JSON line."""
        return json.dumps({"format": FORMAT, "version": VERSION, "revision": self.revision,
                           "created": self.created, "tables": self.tables})  # fmt: skip


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, raw),) = value.items()
        if tag == "$dt":
            return datetime.fromisoformat(raw)
        if tag == "$d":
            return date.fromisoformat(raw)
        if tag == "$b":
            return base64.b64decode(raw)
    return value


def _revision(conn: Connection) -> str:
    if not inspect(conn).has_table("alembic_version"):
        raise BackupError("the database has no schema yet: run `python -m core.db upgrade`")
    return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from core.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(cfg).get_current_head())


def _app_tables() -> list[Table]:
    return list(SQLModel.metadata.sorted_tables)  # parents before children


def _sources(app_url: str, tracker_url: str | None) -> list[tuple[str, list[Table]]]:
    """(database url, tables) pairs; the tracker's events live in the app database, their own, or are left out."""
    if tracker_url is None:
        return [(app_url, _app_tables())]
    if tracker_url == app_url:
        return [(app_url, [*_app_tables(), RASA_EVENTS])]
    return [(app_url, _app_tables()), (tracker_url, [RASA_EVENTS])]


def create(path: Path, app_url: str, tracker_url: str | None) -> Header:
    """Write a backup of both databases to ``path`` (written to a temporary name, then renamed)."""
    engines = [(make_engine(url), tables) for url, tables in _sources(app_url, tracker_url)]
    try:
        with engines[0][0].connect() as conn:
            revision = _revision(conn)
        if revision != _head():
            raise BackupError(f"the database is at schema {revision}, this code at {_head()}: upgrade first")
        counts: dict[str, int] = {}
        for engine, tables in engines:
            with engine.connect() as conn:
                present = set(inspect(conn).get_table_names())
                for t in tables:
                    counts[t.name] = conn.execute(select(func.count()).select_from(t)).scalar_one() if (
                        t.name in present) else 0  # fmt: skip
        header = Header(revision, counts, datetime.now(UTC).isoformat(timespec="seconds"))
        partial = path.with_name(path.name + ".partial")
        with gzip.open(partial, "wt", encoding="utf-8") as out, tqdm(total=sum(counts.values()), desc="backup",
                                                                     unit="row") as bar:  # fmt: skip
            out.write(header.line() + "\n")
            for engine, tables in engines:
                with engine.connect() as conn, conn.begin():  # one consistent read per database
                    for t in tables:
                        if not counts[t.name]:
                            continue
                        key = [c for c in t.primary_key.columns] or list(t.columns)
                        for row in conn.execute(select(t).order_by(*key)).mappings():
                            out.write(json.dumps({"t": t.name, "r": {k: _encode(v) for k, v in row.items()}}) + "\n")
                            bar.update()
        partial.replace(path)
        log.info("backup of %d rows in %d tables written to %s", sum(counts.values()), len(counts), path)
        return header
    finally:
        for engine, _ in engines:
            engine.dispose()


def read_header(path: Path) -> Header:
    """The header of a backup file, checked."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BackupError(f"{path} is not a backup file ({e})") from e
    if not isinstance(first, dict) or first.get("format") != FORMAT or first.get("version") != VERSION:
        raise BackupError(f"{path} is not a {FORMAT} version {VERSION} file")
    return Header(str(first["revision"]), {str(k): int(v) for k, v in first["tables"].items()}, str(first["created"]))


def _rows(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        f.readline()
        for n, line in enumerate(f, start=2):
            try:
                item = json.loads(line)
                yield n, str(item["t"]), {k: _decode(v) for k, v in item["r"].items()}
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
                raise BackupError(f"{path} line {n} is damaged ({e})") from e


def restore(path: Path, app_url: str, tracker_url: str | None, *, replace: bool = False) -> dict[str, int]:
    """Restore ``path`` into the databases; returns the rows restored per table."""
    header = read_header(path)
    if header.revision != _head():
        raise BackupError(f"the backup is at schema {header.revision}, this code at {_head()}: "
                          "restore it with the release that made it, then upgrade")  # fmt: skip
    upgrade(app_url)
    sources = _sources(app_url, tracker_url)
    by_name = {t.name: (i, t) for i, (_, tables) in enumerate(sources) for t in tables}
    if unknown := set(header.tables) - set(by_name):
        raise BackupError(f"the backup holds tables this code does not know: {sorted(unknown)}")
    engines = [make_engine(url) for url, _ in sources]
    conns = [e.connect() for e in engines]
    try:
        for conn, (_, tables) in zip(conns, sources, strict=True):
            conn.begin()
            _TRACKER.create_all(conn, tables=[t for t in tables if t is RASA_EVENTS])
            busy = [t.name for t in tables if conn.execute(select(func.count()).select_from(t)).scalar_one()]
            if busy and not replace:
                raise BackupError(f"the target already holds data in {busy[:5]}: restore into an empty database "
                                  "or pass --replace")  # fmt: skip
            for t in reversed(tables):
                conn.execute(t.delete())
        done = dict.fromkeys(header.tables, 0)
        batch: list[dict[str, Any]] = []
        current = ""
        with tqdm(total=sum(header.tables.values()), desc="restore", unit="row") as bar:
            for n, name, row in _rows(path):  # table by table, parents first (as create wrote them)
                if name not in header.tables:
                    raise BackupError(f"{path} line {n}: table {name!r} is not in the header")
                if name != current or len(batch) >= BATCH:
                    _insert(conns, by_name, current, batch, done, bar)
                    batch, current = [], name
                batch.append(row)
            _insert(conns, by_name, current, batch, done, bar)
        if done != header.tables:
            wrong = {k: (done[k], v) for k, v in header.tables.items() if done[k] != v}
            raise BackupError(f"{path} is incomplete: rows restored vs expected {wrong}")
        for conn, (_, tables) in zip(conns, sources, strict=True):
            _move_sequences(conn, tables)
        for conn in conns:
            conn.commit()
        log.info("restored %d rows in %d tables from %s", sum(done.values()), len(done), path)
        return done
    except Exception:
        for conn in conns:
            conn.rollback()
        raise
    finally:
        for conn in conns:
            conn.close()
        for engine in engines:
            engine.dispose()


def _insert(conns: list[Connection], by_name: dict[str, tuple[int, Table]], name: str, rows: list[dict[str, Any]],
            done: dict[str, int], bar: tqdm) -> None:  # type: ignore[type-arg]  # fmt: skip
    if rows:
        index, table = by_name[name]
        conns[index].execute(insert(table), rows)
        done[name] += len(rows)
        bar.update(len(rows))


def _move_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: serial ids continue after the restored ones (SQLite needs nothing)."""
    if conn.dialect.name != "postgresql":
        return
    for t in tables:
        for c in t.primary_key.columns:
            if isinstance(c.type, Integer) and c.autoincrement in (True, "auto"):
                seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": t.name, "c": c.name}).scalar()
                if seq:
                    conn.execute(text(f'SELECT setval(:s, COALESCE((SELECT MAX("{c.name}") FROM "{t.name}"), 0) + 1, '
                                      "false)"), {"s": seq})  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """CLI: create or restore a backup of the configured databases."""
    from core.pii import setup_logging

    p = argparse.ArgumentParser(prog="python -m core.backup", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="write a backup file")
    c.add_argument("file", type=Path)
    r = sub.add_parser("restore", help="restore a backup file into empty databases")
    r.add_argument("file", type=Path)
    r.add_argument("--replace", action="store_true", help="delete what the target holds first")
    for s in (c, r):
        s.add_argument("--url", default=None, help="app database URL (default: settings)")
        s.add_argument("--tracker-url", default=None, help="Rasa tracker database URL (default: settings)")
    args = p.parse_args(argv)
    setup_logging("%(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    app_url = args.url or settings.app_db_url
    # with --url alone: the tracker's events from the same database if it is PostgreSQL, else left out
    tracker_url = args.tracker_url or (None if args.url and app_url.startswith("sqlite") else
                                       args.url or settings.tracker_db_url)  # fmt: skip
    try:
        if args.command == "create":
            create(args.file, app_url, tracker_url)
        else:
            restore(args.file, app_url, tracker_url, replace=args.replace)
    except (BackupError, OSError) as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
