"""Rasa runtime files rendered from settings, and the project's static config."""

from pathlib import Path

import yaml

from core.rasa_files import endpoints, fingerprint, tracker_store_config
from core.settings import Settings


def test_sqlite_tracker_store() -> None:
    assert tracker_store_config("sqlite:////tmp/x/tracker.db") == {
        "type": "SQL",
        "dialect": "sqlite",
        "db": "/tmp/x/tracker.db",
    }


def test_postgres_tracker_store() -> None:
    cfg = tracker_store_config("postgresql+psycopg://bot:pw@db.internal:5433/store")
    assert cfg == {
        "type": "SQL", "dialect": "postgresql", "url": "db.internal", "port": 5433,
        "db": "store", "username": "bot", "password": "pw",
    }  # fmt: skip


def test_endpoints_point_at_our_services(tmp_path: Path) -> None:
    s = Settings(var_dir=tmp_path, nlu_token="t0k", nlu_port=7001, action_port=7002)
    e = endpoints(s)
    assert e["nlu"] == {"url": "http://127.0.0.1:7001", "token": "t0k"}
    assert e["action_endpoint"]["url"] == "http://127.0.0.1:7002/webhook"
    assert e["tracker_store"]["db"] == str(tmp_path / "tracker.db")


def test_postgres_app_db_shares_the_tracker_database() -> None:
    s = Settings(database_url="postgresql+psycopg://root@127.0.0.1/test")
    assert s.tracker_db_url == s.app_db_url


def test_domain_covers_every_trained_intent_and_response() -> None:
    domain = yaml.safe_load(Path("bot/domain.yml").read_text())
    rules = yaml.safe_load(Path("bot/data/rules.yml").read_text())
    intents = set(domain["intents"])
    import csv

    with open("nlu/data/bitext_intents.csv", encoding="utf-8") as f:
        assert {r["intent"] for r in csv.DictReader(f)} <= intents
    for rule in rules["rules"]:
        for step in rule["steps"]:
            if "intent" in step:
                assert step["intent"] in intents | {"nlu_fallback"}
            if str(step.get("action", "")).startswith("utter_"):
                assert step["action"] in domain["responses"]


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    f = tmp_path / "a.yml"
    f.write_text("a")
    before = fingerprint([f])
    f.write_text("b")
    assert fingerprint([f]) != before
