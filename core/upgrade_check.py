"""Rehearse a schema upgrade on a copy: ``python -m core.upgrade_check [--url URL]``.

Before deploying new code, copy the live database (SQLite: the online backup API; PostgreSQL:
``pg_dump`` into a scratch database ``<name>_upgrade_check``), apply this code's migrations to
the copy, and compare the rows of every table before and after. The live database is only
read. Exit status 0 when the copy reached the head revision with no table losing rows.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url

from core.db import upgrade
from core.errors import CoreError
from core.settings import get_settings

log = logging.getLogger(__name__)


class UpgradeCheckError(CoreError):
    """The copy could not be made or migrated; the message says why."""


@dataclass
class UpgradeReport:
    """Revisions and row counts of the copy before and after the upgrade."""

    revision_before: str | None
    revision_after: str | None
    rows_before: dict[str, int]
    rows_after: dict[str, int]
    lost: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no table lost rows."""
        return not self.lost


def table_rows(url: str) -> tuple[str | None, dict[str, int]]:
    """The schema revision and the row count of every table of the database at ``url``."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            names = inspect(conn).get_table_names()
            revision = None
            if "alembic_version" in names:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            counts = {n: conn.execute(select(func.count()).select_from(table(n))).scalar_one()
                      for n in names if n != "alembic_version"}  # fmt: skip
        return revision, counts
    finally:
        engine.dispose()


@contextmanager
def database_copy(url: str) -> Iterator[str]:
    """A throw-away copy of the database at ``url``; yields the copy's URL, removes it afterwards."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if not u.database or not Path(u.database).is_file():
            raise UpgradeCheckError(f"no SQLite database at {u.database}")
        work = Path(tempfile.mkdtemp(prefix="upgrade-check-"))
        try:
            source, target = sqlite3.connect(f"file:{u.database}?mode=ro", uri=True), sqlite3.connect(work / "copy.db")
            with target:
                source.backup(target)  # consistent even while the bot writes
            source.close()
            target.close()
            yield f"sqlite:///{work / 'copy.db'}"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    if u.get_backend_name() != "postgresql":
        raise UpgradeCheckError(f"cannot copy a {u.get_backend_name()} database")
    for tool in ("pg_dump", "psql"):
        if shutil.which(tool) is None:
            raise UpgradeCheckError(f"{tool} is not installed (apt install postgresql-client)")
    scratch = f"{u.database}_upgrade_check"
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    libpq = u.set(drivername="postgresql")
    try:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{scratch}"'))
        dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges",
                               libpq.render_as_string(hide_password=False)],
                              capture_output=True, check=False)  # fmt: skip
        if dump.returncode:
            raise UpgradeCheckError(f"pg_dump failed: {dump.stderr.decode(errors='replace')[-500:]}")
        load = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1",
                               libpq.set(database=scratch).render_as_string(hide_password=False)],
                              input=dump.stdout, capture_output=True, check=False)  # fmt: skip
        if load.returncode:
            raise UpgradeCheckError(f"loading the copy failed: {load.stderr.decode(errors='replace')[-500:]}")
        yield u.set(database=scratch).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


def check_upgrade(url: str) -> UpgradeReport:
    """Copy ``url``, upgrade the copy to this code's schema, and report what the copy's tables hold."""
    with database_copy(url) as copy:
        before, rows_before = table_rows(copy)
        try:
            upgrade(copy)
        except Exception as e:  # the migration itself failed: that is the finding
            raise UpgradeCheckError(f"the migrations failed on the copy at revision {before}: {e}") from e
        after, rows_after = table_rows(copy)
    lost = {t: (n, rows_after.get(t, 0)) for t, n in rows_before.items() if rows_after.get(t, 0) < n}
    return UpgradeReport(before, after, rows_before, rows_after, lost)


def main(argv: list[str] | None = None) -> None:
    """CLI: rehearse the upgrade of the configured (or given) database; exit 1 when rows were lost."""
    from core.pii import setup_logging

    p = argparse.ArgumentParser(prog="python -m core.upgrade_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=None, help="database URL (default: the app database of the settings)")
    args = p.parse_args(argv)
    setup_logging("%(levelname)s %(name)s: %(message)s")
    try:
        report = check_upgrade(args.url or get_settings().app_db_url)
    except UpgradeCheckError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc
    log.info("schema %s -> %s", report.revision_before, report.revision_after)
    for name in sorted(set(report.rows_before) | set(report.rows_after)):
        log.info("%-24s %8s -> %8s", name, report.rows_before.get(name, "-"), report.rows_after.get(name, "-"))
    if not report.ok:
        log.error("rows lost: %s", report.lost)
        raise SystemExit(1)
    log.info("upgrade rehearsal passed: no table lost rows")


if __name__ == "__main__":
    main()
