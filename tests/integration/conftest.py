"""Fixtures that start the real stack: NLU service, action server, Rasa, worker, database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.scratch_pg import fresh_pg_database, postgres_available
from core.internal_tokens import with_internal_tokens
from core.settings import ROOT, Settings
from core.shop import proof_digests
from core.stack import Service, free_port, stop_all, up
from tests.unit.slack_mock import SlackMock

QUICK = {"cap_per_intent": 60, "min_per_intent": 30, "epochs": 3, "customer_repeat": 2, "chat_noise": 0.0}


def _quick_model_key() -> str:
    from nlu.fingerprint import inputs_hash

    return hashlib.sha256((repr(sorted(QUICK.items())) + inputs_hash()).encode()).hexdigest()[:12]


@pytest.fixture(scope="session")
def quick_nlu_model() -> Path:
    """The real MiniLM fine-tuned briefly on the bot's data (cached under var/test-cache by content hash)."""
    from nlu.train import load_config, run

    out = ROOT / "var" / "test-cache" / f"nlu-quick-{_quick_model_key()}"
    if not (out / "nlu_meta.json").exists():
        run(load_config(**QUICK), out)
    return out


@pytest.fixture(scope="session")
def quick_rec_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recommender bundle trained briefly on the shipped demo behaviour log (cached by content hash)."""
    from sqlmodel import Session

    from core.db import make_engine, upgrade
    from recommender.__main__ import DEMO_DIR
    from recommender.events import histories, import_events, import_products
    from recommender.fit import DEFAULT_CONFIG, load_config
    from recommender.intent import load_events, session_rows
    from recommender.train import train

    h = hashlib.sha256()
    for f in sorted(DEMO_DIR.iterdir()) + sorted((ROOT / "recommender").glob("*.py")) + [DEFAULT_CONFIG]:
        h.update(f.name.encode() + f.read_bytes())
    out = ROOT / "var" / "test-cache" / f"rec-quick-{h.hexdigest()[:12]}"
    if not (out / "current").exists():
        url = f"sqlite:///{tmp_path_factory.mktemp('rec') / 'demo.db'}"
        upgrade(url)
        engine = make_engine(url)
        with Session(engine) as s:
            import_products(s, DEMO_DIR / "catalog.csv")
            import_events(s, DEMO_DIR / "events.csv")
            s.commit()
            sessions = session_rows(load_events(s))
            train(histories(s), load_config(DEFAULT_CONFIG, epochs=8, patience=8), out, sessions)
        engine.dispose()
    return out


@pytest.fixture(scope="module")
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh database of the kind named by the test's parameter ("sqlite" or "postgres")."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'app.db'}"
        return
    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    with fresh_pg_database("storebot_it") as url:
        yield url


class Stack:
    """A running stack and helpers to talk to it."""

    def __init__(self, settings: Settings, services: list[Service], slack: SlackMock):
        self.settings = settings
        self.services = {s.name: s for s in services}
        self.slack = slack

    @property
    def rasa_webhook(self) -> str:
        """Rasa's REST channel (only the gateway and the tests hold its token)."""
        return self.settings.url(self.settings.rasa_port) + "/webhooks/rest/webhook"

    @property
    def rasa_auth(self) -> dict[str, str]:
        """The header Rasa's REST channel wants."""
        return {"Authorization": f"Bearer {self.settings.rasa_token}"}

    def say(self, sender: str, message: str, metadata: dict[str, Any] | None = None) -> list[dict]:
        """One user turn over Rasa's REST channel (as the gateway sends it, with the text's ownership proof);
        returns the bot's messages."""
        proof = proof_digests(message, self.settings.rasa_token).to_metadata()
        body = {"sender": sender, "message": message, "metadata": {"proof": proof, **(metadata or {})}}
        r = httpx.post(self.rasa_webhook, json=body, headers=self.rasa_auth, timeout=60)
        r.raise_for_status()
        return r.json()

    def texts(self, sender: str, message: str) -> str:
        """The bot's reply texts joined by newlines."""
        return "\n".join(m.get("text", "") for m in self.say(sender, message))

    @property
    def gateway(self) -> str:
        """Base URL of the channels gateway (web chat, console)."""
        return self.settings.url(self.settings.gateway_port)

    @property
    def admin_password(self) -> str:
        """The console admin's first-run password."""
        return (self.settings.var_dir / "staff-admin-password.txt").read_text().strip()


def running_stack(
    database_url: str, quick_nlu_model: Path, quick_rec_model: Path, tmp_path_factory: pytest.TempPathFactory,
    **extra: Any,
) -> Iterator[Stack]:  # fmt: skip
    """Start everything on free ports against ``database_url`` (``extra``: more settings); stop it afterwards.

    Slack is a local mock of its Web API; the risk team's alerts go to its channel ``CRISK``.
    """
    slack = SlackMock()
    defaults: dict[str, Any] = dict(
        var_dir=tmp_path_factory.mktemp("var"),
        database_url=database_url,
        nlu_model_dir=quick_nlu_model,
        rec_model_dir=quick_rec_model,
        nlu_token="integration-token",
        nlu_port=free_port(),
        action_port=free_port(),
        rasa_port=free_port(),
        gateway_port=free_port(),
        monitor_metrics_port=free_port(),
        slack_bot_token="xoxb-integration",
        slack_signing_secret="integration-signing-secret",
        slack_api_url=slack.url,
        risk_slack_channel="CRISK",
        rate_ip_per_minute=0,  # every test customer comes from 127.0.0.1 (the limits have their unit tests)
        rate_sessions_per_minute=0,
    )
    settings = with_internal_tokens(Settings(**{**defaults, **extra}))
    services = up(settings, timeout=240)
    try:
        yield Stack(settings, services, slack)
    finally:
        stop_all(services)
        slack.close()


@pytest.fixture(scope="module")
def stack(
    database_url: str, quick_nlu_model: Path, quick_rec_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The whole stack against the test's database."""
    yield from running_stack(database_url, quick_nlu_model, quick_rec_model, tmp_path_factory)
