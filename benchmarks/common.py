"""Helpers shared by the benchmark scripts: percentiles, result files, tables, NLU calls, stored turns."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}


def write_results(name: str, results: dict[str, Any], *, merge: bool = False, path: Path | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (or ``path``) with the machine description.

    With ``merge`` the sections in ``results`` replace those of the same name in the file and
    the others are kept (a benchmark run with only some sections). The file is replaced
    atomically, so a run interrupted while writing leaves the previous file.
    """
    path = path or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if merge and path.exists():
        results = {**json.loads(path.read_text()).get("results", {}), **results}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"meta": machine(), "results": results}, indent=2))
    tmp.replace(path)
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def parse_over_http(url: str, texts: list[str]) -> tuple[list[float], list[str]]:
    """POST each text to a ``/model/parse`` URL one at a time: latencies (ms) and predicted intents."""
    times, intents = [], []
    with httpx.Client(timeout=30) as c:
        for t in texts[:20]:  # warm-up
            c.post(url, json={"text": t})
        for t in texts:
            started = time.perf_counter()
            r = c.post(url, json={"text": t})
            times.append((time.perf_counter() - started) * 1000)
            intents.append(r.json()["intent"]["name"])
    return times, intents


def parses_per_second(url: str, texts: list[str], clients: int = 8, rounds: int = 3) -> float:
    """Throughput of a ``/model/parse`` URL with ``clients`` concurrent clients."""
    work = texts * rounds
    chunks = [work[i::clients] for i in range(clients)]

    def worker(chunk: list[str]) -> None:
        with httpx.Client(timeout=30) as c:
            for t in chunk:
                c.post(url, json={"text": t}).raise_for_status()

    threads = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return len(work) / (time.perf_counter() - started)


def missing_turns(app_url: str, tracker_url: str, answered: dict[str, int], *, monitor: bool = False) -> dict[str, int]:
    """Answered turns (conversation id: how many) missing from the transcript and from Rasa's tracker; with
    ``monitor``, also tracker turns missing from the monitor's ``turn`` table. 0 everywhere is the goal."""
    app, tracker = create_engine(app_url), create_engine(tracker_url)
    missing = {"transcript": 0, "tracker": 0, **({"monitor": 0} if monitor else {})}
    with app.connect() as a, tracker.connect() as t:
        for conv, n in answered.items():
            q = {"c": conv}
            in_transcript = a.execute(text("SELECT count(*) FROM chat_message WHERE conversation_id = :c "
                                           "AND role = 'customer'"), q).scalar_one()  # fmt: skip
            in_tracker = t.execute(text("SELECT count(*) FROM events WHERE sender_id = :c AND type_name = 'user'"),
                                   q).scalar_one()  # fmt: skip
            missing["transcript"] += max(0, n - in_transcript)
            missing["tracker"] += max(0, n - in_tracker)
            if monitor:
                in_monitor = a.execute(text("SELECT count(*) FROM turn WHERE sender_id = :c"), q).scalar_one()
                missing["monitor"] += max(0, in_tracker - in_monitor)
    app.dispose()
    tracker.dispose()
    return missing
