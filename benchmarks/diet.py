"""Rasa 3.6 DIET on BANKING77, trained and served in the Rasa venv: the same-machine baseline.

Protocol: the official BANKING77 train split written as Rasa NLU YAML, Rasa's recommended
pipeline for a language without pre-trained features (whitespace tokens, lexical-syntactic
features, word count vectors and character n-gram (1-4, ``char_wb``) count vectors, DIET with
``constrain_similarities``), a stated number of epochs; the model served by ``rasa run
--enable-api`` and every official test query sent to ``/model/parse`` (top-1 accuracy), then
the same 300 latency texts as our own service (one request at a time, and 8 concurrent clients).

Training takes tens of minutes on 2 cores, so the result is cached: ``cache_key`` hashes the
exact config, the training file and the Rasa version, and a stored result with the same key is
reused instead of training again (``--retrain-diet`` forces a new run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import RESULTS_DIR, parse_over_http, parses_per_second, percentile
from core.settings import ROOT, Settings, get_settings
from core.stack import Service, child_env, free_port, rasa_python, start, stop_all, wait_healthy

log = logging.getLogger("bench.diet")


def diet_config(epochs: int) -> dict[str, Any]:
    """Rasa's recommended NLU pipeline without pre-trained embeddings, DIET for ``epochs``."""
    return {
        "recipe": "default.v1",
        "language": "en",
        "assistant_id": "banking77-diet",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            {"name": "DIETClassifier", "epochs": epochs, "constrain_similarities": True, "random_seed": 42},
        ],
        "policies": [],
    }


def rasa_nlu_yaml(rows: list[tuple[str, str]]) -> str:
    """Rasa NLU training data for (text, intent) pairs.

    Square brackets would be read as entity markup, so they become parentheses (BANKING77 has none).
    """
    by_intent: dict[str, list[str]] = {}
    for text, intent in rows:
        clean = " ".join(text.replace("[", "(").replace("]", ")").split())
        by_intent.setdefault(intent, []).append(clean)
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {t}" for t in by_intent[intent]]
    return "\n".join(lines) + "\n"


def rasa_version(settings: Settings) -> str:
    """The Rasa version installed in the Rasa venv."""
    done = subprocess.run(
        [str(rasa_python(settings)), "-c", "import rasa; print(rasa.__version__)"],
        capture_output=True, text=True, check=True, env=child_env(settings),
    )  # fmt: skip
    return done.stdout.strip()


def cache_key(config_text: str, nlu_text: str, version: str) -> str:
    """Hash of everything that decides the trained model."""
    return hashlib.sha256(f"{version}\n{config_text}\n{nlu_text}".encode()).hexdigest()[:16]


def cached_result(key: str) -> dict[str, Any] | None:
    """The stored DIET result with this cache key, if any."""
    path = RESULTS_DIR / "nlu.json"
    if not path.exists():
        return None
    found = json.loads(path.read_text()).get("results", {}).get("diet")
    return found if found and found.get("cache_key") == key else None


def _train(settings: Settings, config: Path, nlu: Path, out: Path) -> tuple[float, float]:
    """Train DIET; (seconds, peak resident memory of the training process in GiB)."""
    argv = [
        str(rasa_python(settings)), str(ROOT / "bot" / "rasa_launch.py"), "train", "nlu",
        "--config", str(config), "--nlu", str(nlu), "--out", str(out), "--fixed-model-name", "diet",
    ]  # fmt: skip
    log.info("training DIET in the Rasa venv (Rasa's own progress bar follows)...")
    started = time.time()
    subprocess.run(argv, check=True, env=child_env(settings), cwd=out.parent)
    seconds = time.time() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 1024**2


def _serve(settings: Settings, model: Path) -> tuple[Service, str]:
    port = free_port()
    argv = [
        str(rasa_python(settings)), str(ROOT / "bot" / "rasa_launch.py"), "run", "--enable-api",
        "-i", "127.0.0.1", "-p", str(port), "-m", str(model),
    ]  # fmt: skip
    svc = Service("rasa-diet", argv, f"http://127.0.0.1:{port}/status")
    start(svc, settings)
    wait_healthy(svc, 300)
    return svc, f"http://127.0.0.1:{port}/model/parse"


def bench_diet(
    data_dir: Path, epochs: int, latency: list[str], *, retrain: bool = False, limit: int = 0
) -> dict[str, Any]:
    """Train (or reuse) DIET on BANKING77 train; accuracy on the official test; latency over HTTP."""
    from benchmarks.nlu import csv_rows

    settings = get_settings()
    train = csv_rows(data_dir / "banking77" / "train.csv")[: limit or None]
    nlu_text = rasa_nlu_yaml([(r["text"], r["category"]) for r in train])
    config_text = yaml.safe_dump(diet_config(epochs), sort_keys=False)
    key = cache_key(config_text, nlu_text, rasa_version(settings))
    if not retrain and (hit := cached_result(key)):
        log.info("DIET result for this exact config and data found (cache key %s): reused, not retrained", key)
        return hit
    work = Path(tempfile.mkdtemp(prefix="bench-diet-"))
    (work / "config.yml").write_text(config_text)
    (work / "nlu.yml").write_text(nlu_text)
    seconds, peak_gib = _train(settings, work / "config.yml", work / "nlu.yml", work / "models")
    test = csv_rows(data_dir / "banking77" / "test.csv")
    svc, url = _serve(Settings(var_dir=work / "var"), work / "models" / "diet.tar.gz")
    try:
        _, predicted = parse_over_http(url, [r["text"] for r in test])
        times, _ = parse_over_http(url, latency)
        throughput = parses_per_second(url, latency)
    finally:
        stop_all([svc])
    accuracy = sum(p == r["category"] for p, r in zip(predicted, test, strict=True)) / len(test)
    return {
        "protocol": f"Rasa DIET, recommended count-vector pipeline (word + char_wb 1-4), {epochs} epochs, "
        f"official train ({len(train)}) → official test ({len(test)}) through rasa run /model/parse, top-1",
        "cache_key": key,
        "config": diet_config(epochs),
        "accuracy": round(accuracy, 4),
        "train_seconds": round(seconds),
        "train_peak_rss_gib": round(peak_gib, 2),
        "p50_ms": round(percentile(times, 50), 2),
        "p95_ms": round(percentile(times, 95), 2),
        "p99_ms": round(percentile(times, 99), 2),
        "parses_per_s_8_clients": round(throughput, 1),
    }
