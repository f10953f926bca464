"""Backup and restore (portable between SQLite and PostgreSQL), and the upgrade rehearsal on a filled copy."""

from __future__ import annotations

import gzip
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, insert, select
from sqlmodel import Session, SQLModel

from bot.channels.conversations import ChatService
from bot.channels.rasa_client import RasaClient
from core import backup
from core.db import MIGRATIONS, make_engine, upgrade
from core.demo import seed
from core.models import AlertIncident, FaqEntry, FaqVector, Product, Turn
from core.upgrade_check import check_upgrade
from core.upgrade_check import main as upgrade_check_main
from recommender.events import insert_events
from tests.unit.rasa_fake import FakeRasa

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def fill(app_url: str, tracker_url: str | None) -> None:
    """A shop with data in most tables: demo orders, a conversation with a handoff, turns, FAQ vectors,
    products and behaviour, an alert, and Rasa's tracker events."""
    engine = make_engine(app_url)
    seed(engine)
    service = ChatService(engine=engine, rasa=RasaClient("http://rasa", transport=FakeRasa(engine).transport()))
    conv, _ = service.start_web("c1")
    for text in ["hello", "agent", "still there?"]:
        service.customer_says(conv, text)
    with Session(engine) as s:
        s.add(FaqEntry(id="returns", question="How do I return?", answer="Within 30 days.", content_hash="h"))
        s.flush()
        s.add(
            FaqVector(entry_id="returns", model="m", kind="question", vector=np.arange(4, dtype=np.float32).tobytes())
        )
        s.add(Product(id="P1", name="Kettle", category="Home | Kitchen", price=25.5, created_at=NOW))
        s.add_all([Turn(sender_id="c1", text=f"t{i}", sentiment="negative", timestamp=NOW + timedelta(seconds=i),
                        message_id=f"m{i}", tracker_event_id=i + 1) for i in range(5)])  # fmt: skip
        s.add(AlertIncident(engine_id=1, opened_at=NOW, topics='["all"]', evidence='{"all": {"n": 40}}'))
        insert_events(s, [{"customer_id": "c1", "product_id": "P1", "kind": k, "ts": NOW + timedelta(minutes=i),
                           "session_id": "s", "value": None, "source": "import"}
                          for i, k in enumerate(["view", "cart", "purchase"])])  # fmt: skip
        s.commit()
    engine.dispose()
    if tracker_url:
        tracker = make_engine(tracker_url)
        backup.RASA_EVENTS.metadata.create_all(tracker)
        with tracker.begin() as c:
            c.execute(insert(backup.RASA_EVENTS), [
                {"sender_id": "c1", "type_name": "user", "timestamp": 1.5 + i, "intent_name": "greet",
                 "action_name": None, "data": '{"text": "hi"}'} for i in range(3)
            ])  # fmt: skip
        tracker.dispose()


def dump(url: str, tracker: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every row of every app table (or of Rasa's events), in key order, with times as UTC instants."""
    engine = make_engine(url)
    tables = [backup.RASA_EVENTS] if tracker else SQLModel.metadata.sorted_tables
    out = {}
    with engine.connect() as c:
        for t in tables:
            rows = [dict(r) for r in c.execute(select(t).order_by(*t.primary_key.columns)).mappings()]
            out[t.name] = [{k: (v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v)
                            for k, v in r.items()} for r in rows]  # fmt: skip
    engine.dispose()
    return out


def _sqlite(tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    upgrade(url)
    return url


def test_backup_and_restore_round_trip_on_sqlite(tmp_path: Path) -> None:
    app, tracker = _sqlite(tmp_path, "app.db"), f"sqlite:///{tmp_path / 'tracker.db'}"
    fill(app, tracker)
    header = backup.create(tmp_path / "b.jsonl.gz", app, tracker)
    assert header.tables["chat_message"] >= 5 and header.tables["events"] == 3 and header.tables["faq_vector"] == 1
    app2, tracker2 = f"sqlite:///{tmp_path / 'app2.db'}", f"sqlite:///{tmp_path / 'tracker2.db'}"
    restored = backup.restore(tmp_path / "b.jsonl.gz", app2, tracker2)
    assert restored == header.tables
    assert dump(app2) == dump(app)
    assert dump(tracker2, tracker=True) == dump(tracker, tracker=True)


def test_restore_refuses_a_filled_target_unless_replacing(tmp_path: Path) -> None:
    app = _sqlite(tmp_path, "app.db")
    fill(app, None)
    backup.create(tmp_path / "b.gz", app, None)
    with pytest.raises(backup.BackupError, match="already holds data"):
        backup.restore(tmp_path / "b.gz", app, None)
    assert backup.restore(tmp_path / "b.gz", app, None, replace=True)["chat_message"] >= 5


def test_a_damaged_backup_restores_nothing(tmp_path: Path) -> None:
    app = _sqlite(tmp_path, "app.db")
    fill(app, None)
    backup.create(tmp_path / "b.gz", app, None)
    with gzip.open(tmp_path / "b.gz", "rt") as f:
        lines = f.read().splitlines()
    target = _sqlite(tmp_path, "target.db")
    cases = {
        "cut.gz": "\n".join(lines[: len(lines) // 2]) + "\n",  # a copy that stopped half-way
        "broken.gz": "\n".join([*lines[:5], "{not json", *lines[5:]]) + "\n",
    }
    for name, content in cases.items():
        with gzip.open(tmp_path / name, "wt") as f:
            f.write(content)
        with pytest.raises(backup.BackupError, match=r"incomplete|line 6 is damaged"):
            backup.restore(tmp_path / name, target, None)
        assert all(not rows for rows in dump(target).values()), name
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(backup.BackupError, match="not a backup file"):
        backup.restore(tmp_path / "plain.txt", target, None)
    with pytest.raises(SystemExit) as e:
        backup.main(["restore", str(tmp_path / "missing.gz"), "--url", target])
    assert e.value.code == 2


@pytest.mark.postgres
def test_a_sqlite_backup_restores_into_postgresql_and_ids_continue(tmp_path: Path, pg_url: str) -> None:
    app = _sqlite(tmp_path, "app.db")
    fill(app, f"sqlite:///{tmp_path / 'tracker.db'}")
    header = backup.create(tmp_path / "b.gz", app, f"sqlite:///{tmp_path / 'tracker.db'}")
    assert backup.restore(tmp_path / "b.gz", pg_url, pg_url) == header.tables
    assert dump(pg_url) == dump(app)
    engine = make_engine(pg_url)
    with Session(engine) as s:  # the id sequence continues after the restored ids
        s.add(Turn(sender_id="c2", text="new", timestamp=NOW))
        s.commit()
        assert s.scalar(select(func.max(Turn.id))) == header.tables["turn"] + 1
    engine.dispose()


def _downgrade(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.downgrade(cfg, revision)


def test_upgrade_rehearsal_on_a_filled_copy_keeps_every_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = _sqlite(tmp_path, "app.db")
    fill(app, None)
    _downgrade(app, "0004")  # the database as the release before the monitor shipped
    report = check_upgrade(app)
    assert (report.revision_before, report.revision_after) == ("0004", "0008")
    assert report.ok and report.rows_before["chat_message"] >= 5 and report.rows_before["behaviour_event"] == 3
    assert all(report.rows_after[t] == n for t, n in report.rows_before.items())
    assert "alert_incident" not in report.rows_before and report.rows_after["alert_silence"] == 0
    caplog.set_level(logging.INFO)
    upgrade_check_main(["--url", app])  # the CLI exits 0
    assert "no table lost rows" in caplog.text
    from core.upgrade_check import table_rows

    assert table_rows(app)[0] == "0004"  # the live database was only read


@pytest.mark.postgres
def test_upgrade_rehearsal_on_postgresql(pg_url: str) -> None:
    upgrade(pg_url)
    fill(pg_url, None)
    _downgrade(pg_url, "0005")
    report = check_upgrade(pg_url)
    assert (report.revision_before, report.revision_after) == ("0005", "0008") and report.ok
    assert report.rows_after["chat_message"] == report.rows_before["chat_message"] >= 5
