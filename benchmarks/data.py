"""Data safety on a filled database: backup, restore, and the upgrade rehearsal, timed and counted.

``python -m benchmarks.data [--conversations 5000]`` fills a fresh database the way a running
shop would (the demo catalog and behaviour log, then N conversations of 6 transcript messages,
3 monitor turns and 8 Rasa tracker events each, written through the ORM tables), once on SQLite
and once on the local PostgreSQL when it answers. Per database:

- ``backup``: ``core.backup.create`` of the app tables and the tracker events; time, file size;
- ``restore``: ``core.backup.restore`` into a second fresh database; time; every table's rows
  counted against the source;
- ``upgrade``: the source migrated down to revision 0005 (the release before the event-broker
  ids and alert silences), then ``core.upgrade_check.check_upgrade``: copy, migrate to head,
  compare every table's rows; time.

Writes benchmarks/results/data.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import func, insert, select
from sqlmodel import SQLModel

from benchmarks.common import table, write_results
from benchmarks.scratch_pg import postgres_available, scratch_databases, scratch_url
from core import backup
from core.db import MIGRATIONS, make_engine, upgrade
from core.models import ChatMessage, Conversation, Turn
from core.upgrade_check import check_upgrade
from recommender.__main__ import import_demo

log = logging.getLogger("bench.data")
START = datetime(2026, 10, 1, tzinfo=UTC)


def fill(url: str, conversations: int) -> None:
    """The demo store plus ``conversations`` conversations (transcript, monitor turns, tracker events)."""
    upgrade(url)
    engine = make_engine(url)
    import_demo(engine)
    backup.RASA_EVENTS.metadata.create_all(engine)
    texts = ["hello", "where is my order 100234?", "thanks"]
    for start in range(0, conversations, 1000):
        ids = [f"web-{uuid.uuid4().hex[:16]}" for _ in range(min(1000, conversations - start))]
        at = [START + timedelta(minutes=start + i) for i in range(len(ids))]
        with engine.begin() as c:
            c.execute(insert(Conversation), [{"id": cid, "channel": "web", "customer_id": f"cust{n % 400 + 1:04d}",
                                              "created_at": t, "last_activity_at": t}
                                             for n, (cid, t) in enumerate(zip(ids, at, strict=True))])  # fmt: skip
            c.execute(insert(ChatMessage), [
                {"conversation_id": cid, "role": role, "text": f"{role} says {texts[k]}", "data": "{}", "author": "",
                 "intent": "greet", "created_at": t + timedelta(seconds=k)}
                for cid, t in zip(ids, at, strict=True) for k in range(3) for role in ("customer", "bot")
            ])  # fmt: skip
            c.execute(insert(Turn), [
                {"tracker_event_id": (start + n) * 3 + k + 1, "message_id": f"{cid}-{k}", "sender_id": cid,
                 "channel": "web", "text": texts[k], "intent": "greet", "confidence": 0.9, "sentiment": "neutral",
                 "sentiment_score": 0.8, "entities": "[]", "timestamp": t + timedelta(seconds=k)}
                for n, (cid, t) in enumerate(zip(ids, at, strict=True)) for k in range(3)
            ])  # fmt: skip
            c.execute(insert(backup.RASA_EVENTS), [
                {"sender_id": cid, "type_name": kind, "timestamp": t.timestamp() + k, "intent_name": None,
                 "action_name": None, "data": json.dumps({"event": kind})}
                for cid, t in zip(ids, at, strict=True)
                for k, kind in enumerate(["action", "user", "action", "bot", "user", "action", "bot", "user"])
            ])  # fmt: skip
    engine.dispose()


def rows(url: str) -> dict[str, int]:
    """Rows per table of the app tables and the tracker events."""
    engine = make_engine(url)
    with engine.connect() as c:
        out = {t.name: c.execute(select(func.count()).select_from(t)).scalar_one()
               for t in [*SQLModel.metadata.sorted_tables, backup.RASA_EVENTS]}  # fmt: skip
    engine.dispose()
    return out


@contextmanager
def databases(kind: str, work: Path) -> Iterator[tuple[str, str]]:
    """Two fresh databases of ``kind`` (sqlite | postgresql): the source and the restore target."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'source.db'}", f"sqlite:///{work / 'target.db'}"
        return
    with scratch_databases("storebot_data", 2) as names:
        yield scratch_url(names[0]), scratch_url(names[1])


def run(kind: str, conversations: int) -> dict[str, Any]:
    """Fill, back up, restore, rehearse the upgrade; the figures for one kind of database."""
    work = Path(tempfile.mkdtemp(prefix=f"bench-data-{kind}-"))
    with databases(kind, work) as (source, target):
        fill(source, conversations)
        before = rows(source)
        started = time.perf_counter()
        header = backup.create(work / "backup.jsonl.gz", source, source)
        backup_s = time.perf_counter() - started
        started = time.perf_counter()
        backup.restore(work / "backup.jsonl.gz", target, target)
        restore_s = time.perf_counter() - started
        restored = rows(target)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", source.replace("%", "%%"))
        command.downgrade(cfg, "0005")
        started = time.perf_counter()
        report = check_upgrade(source)
        upgrade_s = time.perf_counter() - started
    return {
        "database": kind, "rows": sum(before.values()), "tables": len(before),
        "backup_s": round(backup_s, 1), "backup_mb": round((work / "backup.jsonl.gz").stat().st_size / 1e6, 1),
        "restore_s": round(restore_s, 1), "restored_equal": restored == before and header.tables == before,
        "upgrade_from": report.revision_before, "upgrade_to": report.revision_after, "upgrade_s": round(upgrade_s, 1),
        "upgrade_rows_lost": report.lost, "upgrade_rows_checked": sum(report.rows_before.values()),
    }  # fmt: skip


def main() -> None:
    """Both databases (PostgreSQL when it answers), the table, benchmarks/results/data.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.data", description=__doc__.split("\n\n")[0])
    p.add_argument("--conversations", type=int, default=5000)
    args = p.parse_args()
    if not 1 <= args.conversations <= 200_000:
        p.error("--conversations 1-200000")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    kinds = ["sqlite"]
    if postgres_available():
        kinds.append("postgresql")
    else:
        log.warning("no PostgreSQL on 127.0.0.1:5432: SQLite only")
    results = [run(kind, args.conversations) for kind in kinds]
    print(table(["database", "rows", "backup s", "backup MB", "restore s", "restored = source", "upgrade",
                 "upgrade s", "rows lost"],
                [[r["database"], r["rows"], r["backup_s"], r["backup_mb"], r["restore_s"], r["restored_equal"],
                  f"{r['upgrade_from']} → {r['upgrade_to']}", r["upgrade_s"], len(r["upgrade_rows_lost"])]
                 for r in results]))  # fmt: skip
    write_results("data", {"conversations": args.conversations, "runs": results})


if __name__ == "__main__":
    main()
