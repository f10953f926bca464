"""Rasa runtime files rendered from settings, and the project's static config."""

from pathlib import Path

import pytest
import yaml

from core.errors import ConfigError, SetupError
from core.rasa_files import endpoints, fingerprint, lock_store_config, tracker_store_config
from core.settings import Settings
from core.stack import services


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


def test_redis_lock_store_and_several_rasa_workers(tmp_path: Path) -> None:
    assert lock_store_config("redis://:s3cret@cache.internal:6380/3") == {
        "type": "redis", "url": "cache.internal", "port": 6380, "db": 3, "password": "s3cret",
    }  # fmt: skip
    assert lock_store_config("redis://127.0.0.1")["db"] == 1
    for bad in ("http://x:6379/1", "redis:///1", "redis://h:6379/cache"):
        with pytest.raises(ConfigError, match="LOCK_STORE_URL"):
            lock_store_config(bad)
    s = Settings(_env_file=None, var_dir=tmp_path, rasa_port=7005, rasa_workers=2,  # type: ignore[call-arg]
                 lock_store_url="redis://127.0.0.1:6379/2")  # fmt: skip
    assert endpoints(s)["lock_store"]["db"] == 2
    assert s.rasa_urls == "http://127.0.0.1:7005,http://127.0.0.1:7006"
    names = [svc.name for svc in services(s, tmp_path / "e.yml", tmp_path / "m.tar.gz")]
    assert names == ["nlu", "actions", "rasa", "rasa-2", "gateway", "worker"]
    with pytest.raises(SetupError, match="needs LOCK_STORE_URL"):
        services(Settings(_env_file=None, var_dir=tmp_path, rasa_workers=2), tmp_path, tmp_path)  # type: ignore[call-arg]


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
