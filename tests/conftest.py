"""Shared fixtures: tiny real models, temporary databases, settings isolation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

TINY_DATA = [
    ("hello there", "greet"), ("hi", "greet"), ("good morning", "greet"), ("hey bot", "greet"),
    ("where is my order", "track_order"), ("track my parcel please", "track_order"),
    ("has my order shipped yet", "track_order"), ("status of order 100234", "track_order"),
    ("I want to speak to a human", "contact_human_agent"), ("get me an agent", "contact_human_agent"),
    ("talk to a real person", "contact_human_agent"), ("connect me with support staff", "contact_human_agent"),
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with the real MiniLM tokenizer (random weights, saved to disk)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from nlu.model import base_model_path

    out = tmp_path_factory.mktemp("tiny-bert")
    AutoTokenizer.from_pretrained(base_model_path()).save_pretrained(out)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny intent CSV, Rasa YAML and sentiment CSV."""
    d = tmp_path_factory.mktemp("tiny-data")
    (d / "intents.csv").write_text("text,intent\n" + "".join(f"{t},{i}\n" for t, i in TINY_DATA))
    (d / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n  - intent: inform\n    examples: |\n      - it is [100234](order_id)\n'
        "      - number [55512](order_id)\n      - order [100236](order_id)\n"
    )
    (d / "sentiment.csv").write_text(
        "text,label\nI hate this,negative\nawful service,0\nok,neutral\nwhere is it,1\n"
        "great thanks,positive\nlove it,2\nterrible,negative\nfine,neutral\nsuper,positive\n"
    )
    return d


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path, tiny_data_dir: Path) -> Path:
    """A tiny joint model trained for a few steps on the tiny data."""
    from nlu.train import load_config, run

    cfg = load_config(
        rasa_nlu=[str(tiny_data_dir / "nlu.yml")],
        intent_csv=[str(tiny_data_dir / "intents.csv")],
        sentiment_csv=[str(tiny_data_dir / "sentiment.csv")],
        epochs=2,
        batch_size=8,
        min_per_intent=4,
        dev_fraction=0.2,
        fallback_threshold=0.0,
        out_of_scope="",
        customer_csv=[],
        calibration_set="",
        retrieval_intent="",
        chat_noise=0.0,
    )
    out = tmp_path_factory.mktemp("tiny-model") / "nlu"
    run(cfg, out, encoder_path=tiny_encoder_dir, tiny=True)
    return out


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (the test is skipped when no server answers)."""
    from benchmarks.scratch_pg import fresh_pg_database, postgres_available

    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    with fresh_pg_database() as url:
        yield url


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite app database."""
    from core.db import upgrade

    url = f"sqlite:///{tmp_path / 'app.db'}"
    upgrade(url)
    return url


@pytest.fixture()
def app_settings(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Process settings pointing at a temporary var dir and database."""
    from core import db, settings

    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    settings.get_settings.cache_clear()
    db._engines.clear()
    yield settings.get_settings()
    settings.get_settings.cache_clear()
    for engine in db._engines.values():
        engine.dispose()
    db._engines.clear()


@pytest.fixture(scope="session")
def minilm_embedder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 sentence embedder from its wheel (22M parameters, loads in ~1 s)."""
    from nlu.faq.embedder import load_embedder

    return load_embedder(device="cpu")
