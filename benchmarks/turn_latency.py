"""Per-turn latency through the whole stack, with and without the cached action-schema validator.

``python -m benchmarks.turn_latency [--turns N]`` starts the real stack twice on free ports
(SQLite, the trained NLU model in settings.nlu_model_dir), sends the same conversations over
Rasa's REST channel, and prints p50/p95/p99 per kind of turn. Protocol: one client, turns sent
one after another, wall time of the HTTP round trip; the first 5 turns of each run are warm-up.
Writes benchmarks/results/turn_latency.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import percentile, table, write_results
from core.internal_tokens import with_internal_tokens
from core.settings import Settings, get_settings
from core.stack import free_port, stop_all, up

log = logging.getLogger("bench")
# (kind, message): "action" turns run a custom action on our action server, "rule" turns do not.
SCRIPT = [("rule", "hello"), ("action", "where is my order 100234?"), ("rule", "thanks")]


def measure(cache: bool, turns: int) -> dict[str, dict[str, float]]:
    """Start a stack with the schema cache on or off and time ``turns`` conversations' turns."""
    os.environ["RASA_SCHEMA_CACHE"] = "1" if cache else "0"
    settings = with_internal_tokens(
        Settings(
            var_dir=Path(tempfile.mkdtemp(prefix="bench-")),
            nlu_model_dir=get_settings().nlu_model_dir,
            nlu_port=free_port(),
            action_port=free_port(),
            rasa_port=free_port(),
        )
    )
    services = up(settings)
    url = settings.url(settings.rasa_port) + "/webhooks/rest/webhook"
    times: dict[str, list[float]] = {"rule": [], "action": []}
    try:
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {settings.rasa_token}"}) as client:
            for i in range(turns // len(SCRIPT) + 2):
                for kind, text in SCRIPT:
                    started = time.perf_counter()
                    client.post(url, json={"sender": f"bench-{i}", "message": text}).raise_for_status()
                    if i >= 2:  # warm-up conversations are not counted
                        times[kind].append((time.perf_counter() - started) * 1000)
    finally:
        stop_all(services)
    return {
        kind: {
            "n": len(v),
            "p50_ms": round(statistics.median(v), 1),
            "p95_ms": round(percentile(v, 95), 1),
            "p99_ms": round(percentile(v, 99), 1),
        }
        for kind, v in times.items()
    }


def main() -> None:
    """Run both variants, print the table, write the JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.turn_latency")
    p.add_argument("--turns", type=int, default=300)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    results = {"cached validator": measure(True, args.turns), "Rasa as shipped": measure(False, args.turns)}
    rows = [
        [variant, kind, r["n"], r["p50_ms"], r["p95_ms"], r["p99_ms"]]
        for variant, kinds in results.items()
        for kind, r in kinds.items()
    ]
    print(table(["variant", "turn kind", "n", "p50 ms", "p95 ms", "p99 ms"], rows))
    write_results("turn_latency", results)


if __name__ == "__main__":
    main()
