"""Load test: many customers chatting at once through the gateway, then a count of what was stored.

``python -m benchmarks.load [--levels 20,200] [--minutes 10] [--long-turns 300] [--database-url URL]`` starts the real
stack on free loopback ports (the trained NLU model of settings.nlu_model_dir, SQLite unless a
database URL is given), then, for each level, keeps that many conversations going for the given
time: each virtual customer opens a web-chat session, plays a multi-turn script drawn from
:data:`SCRIPTS` (order tracking with the order form, FAQ questions, recommendations, small talk),
waits a human-like 3-8 s between messages (``--think``; shorter waits measure capacity), and starts
a new conversation when the script ends.

Protocol: a turn is one ``POST /api/chat/messages`` through the gateway (the path every customer
takes: transcript, Rasa's REST channel, NLU service, action server, tracker store), timed from
request to reply; the first 30 s of each level are warm-up and not counted. An error is a non-200
answer, a transport failure, or the gateway's "can't answer right now" note. Afterwards every
turn answered 200 is looked up: in the transcript (``chat_message``) and in Rasa's tracker
(``events``), per conversation. The load generator runs on the same machine (asyncio, one core's
worth at most). Rate limits per address are lifted for the run (all customers come from
127.0.0.1), and so is the per-customer one (a scripted customer sends at most 20 a minute, under it;
the long conversation sends back to back). CPU per turn: the user + system CPU time each
service process used during the level (``/proc/<pid>/stat``, warm-up included), divided by every
turn answered in it (warm-up included), and the load generator's own. Long conversation
(``--long-turns N``): one customer sends N messages one after another in a single conversation
(cycling through small talk, an order question and FAQ questions, none of which hands over),
and the turn times of turns 6-15 are compared with those of the last ten. Writes
benchmarks/results/load.json (one section per database and Rasa worker count).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import missing_turns, percentile, table, write_results
from core.internal_tokens import with_internal_tokens
from core.settings import Settings, get_settings
from core.stack import Service, free_port, stop_all, up

log = logging.getLogger("bench.load")
WARMUP_S = 30.0
SCRIPTS: list[list[str]] = [
    ["hello", "where is my order 100234?", "thanks, bye"],
    ["hi", "can you track my order", "it's 100235", "great, thank you"],
    ["how do I return an item?", "how long does a refund take?", "ok thanks"],
    ["anything for me?", "show me something cheaper", "thanks"],
    ["do you ship to canada?", "what payment methods do you accept?", "bye"],
    ["hello", "my package is late and I'm annoyed", "where is my order 100236?", "ok"],
]


@dataclass
class Level:
    """What one load level measured."""

    users: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)  # conversation id -> turns answered 200
    sent: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def customer(
    base: str, level: Level, stop_at: float, count_from: float, rng: random.Random, think: tuple[float, float]
) -> None:
    """One virtual customer: conversations, one after another, until ``stop_at``."""
    # Idle connections are dropped before the server's 5 s keep-alive ends, as a browser's are after a pause:
    # reusing one the server is closing fails in transit, an artefact of the generator, not of the bot.
    limits = httpx.Limits(keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        while time.monotonic() < stop_at:
            try:
                r = await http.post("/api/chat/sessions", json={"customer_id": f"cust{rng.randint(1, 400):04d}"})
            except httpx.HTTPError as exc:
                level.error(f"session {exc.__class__.__name__}")
                await asyncio.sleep(1)
                continue
            if r.status_code != 201:
                level.error(f"session {r.status_code}")
                await asyncio.sleep(1)
                continue
            conv, auth = r.json()["conversation_id"], {"Authorization": f"Bearer {r.json()['token']}"}
            for message in rng.choice(SCRIPTS):
                if time.monotonic() >= stop_at:
                    return
                started = time.monotonic()
                try:
                    r = await http.post("/api/chat/messages", json={"text": message}, headers=auth)
                except httpx.HTTPError as exc:
                    level.error(exc.__class__.__name__)
                    continue
                elapsed = (time.monotonic() - started) * 1000
                counted = started >= count_from
                level.sent += counted
                if r.status_code != 200:
                    level.error(f"http {r.status_code}")
                else:
                    level.answered[conv] = level.answered.get(conv, 0) + 1
                    if any("can't answer right now" in m["text"] for m in r.json()["messages"]):
                        level.error("rasa unavailable")
                    elif counted:
                        level.latencies_ms.append(elapsed)
                await asyncio.sleep(rng.uniform(*think))


async def run_level(base: str, users: int, seconds: float, seed: int, think: tuple[float, float] = (3.0, 8.0)) -> Level:
    """``users`` customers for ``seconds`` (plus warm-up), each waiting ``think`` seconds (uniform) between
    messages; they start spread over the first 10 s."""
    level = Level(users)
    now = time.monotonic()
    stop_at, count_from = now + WARMUP_S + seconds, now + WARMUP_S
    rng = random.Random(seed)

    async def delayed(i: int) -> None:
        await asyncio.sleep(10.0 * i / users)
        await customer(base, level, stop_at, count_from, random.Random(rng.random()), think)

    for outcome in await asyncio.gather(*(delayed(i) for i in range(users)), return_exceptions=True):
        if isinstance(outcome, BaseException):  # a customer that crashed stopped adding load: an error too
            level.error(f"client {outcome.__class__.__name__}")
    return level


LONG_SCRIPT = [
    "hello",
    "where is my order 100234?",
    "how do I return an item?",
    "thanks",
    "what payment methods do you accept?",
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux ``/proc``; 0 when it is gone)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def cpu_snapshot(services: list[Service]) -> dict[str, float]:
    """CPU seconds so far per service and for this (load generator) process."""
    snap = {s.name: cpu_seconds(s.proc.pid) for s in services if s.proc is not None}
    snap["load generator"] = time.process_time()
    return snap


def cpu_per_turn(before: dict[str, float], after: dict[str, float], turns: int) -> dict[str, float]:
    """Milliseconds of CPU per answered turn, per process, and the services' total (generator excluded)."""
    per = {k: round(1000 * (after[k] - before.get(k, 0.0)) / max(turns, 1), 2) for k in after}
    per["total (services)"] = round(sum(v for k, v in per.items() if k != "load generator"), 2)
    return per


def long_conversation(base: str, turns: int) -> tuple[list[float], int]:
    """Turn times (ms) of one conversation of ``turns`` messages, sent one after another, and how many
    turns got no bot reply (a handoff would pause the bot and make later turns cheap)."""
    out: list[float] = []
    silent = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        r = http.post("/api/chat/sessions", json={"customer_id": "cust0001"})
        r.raise_for_status()
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        for i in range(turns):
            started = time.monotonic()
            r = http.post("/api/chat/messages", json={"text": LONG_SCRIPT[i % len(LONG_SCRIPT)]}, headers=auth)
            out.append((time.monotonic() - started) * 1000)
            r.raise_for_status()
            silent += not any(m["role"] == "bot" for m in r.json()["messages"])
    return out, silent


def long_summary(times: list[float], silent: int, cpu: dict[str, float]) -> dict[str, Any]:
    """Early vs late turns of the long conversation."""
    early, late = times[5:15], times[-10:]
    e, lt = percentile(early, 50), percentile(late, 50)
    return {
        "turns": len(times),
        "turns_without_bot_reply": silent,
        "turn_6_15_median_ms": round(e, 1),
        "last_10_turns_median_ms": round(lt, 1),
        "late_vs_early": round(lt / e, 3) if e else None,
        "turn_ms_by_50": [round(percentile(times[i : i + 50], 50), 1) for i in range(0, len(times), 50)],
        "cpu_ms_per_turn": cpu,
    }


def summary(level: Level, seconds: float, missing: dict[str, int]) -> dict[str, Any]:
    """The figures of one level."""
    lat = level.latencies_ms or [float("nan")]
    return {
        "concurrent_conversations": level.users,
        "measured_seconds": seconds,
        "turns": len(level.latencies_ms),
        "turns_per_second": round(len(level.latencies_ms) / seconds, 2),
        "p50_ms": round(percentile(lat, 50), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "max_ms": round(max(lat), 1),
        "errors": sum(level.errors.values()),
        "error_kinds": level.errors,
        "answered_turns_checked": sum(level.answered.values()),
        "missing_in_transcript": missing["transcript"],
        "missing_in_tracker": missing["tracker"],
    }


def main() -> None:
    """Start the stack, run each level, print the table, write benchmarks/results/load.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="20,200", help="concurrent conversations, comma-separated")
    p.add_argument(
        "--minutes",
        default="10",
        help="measured minutes per level (after 30 s warm-up); one value, or one per level, comma-separated",
    )
    p.add_argument("--database-url", default="", help="app + tracker database (default: SQLite files)")
    p.add_argument("--rasa-workers", type=int, default=1, help="Rasa processes (more than 1 needs --lock-store-url)")
    p.add_argument("--lock-store-url", default="")
    p.add_argument("--long-turns", type=int, default=0, help="then one conversation of this many turns (0: none)")
    p.add_argument("--nlu-model", type=Path, default=None, help="NLU model dir (default: settings.nlu_model_dir)")
    p.add_argument(
        "--think",
        default="3,8",
        help="seconds a customer waits between messages, MIN,MAX (uniform); shorter waits measure capacity",
    )
    p.add_argument("--label", default="", help="suffix of the results key (e.g. a baseline revision)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    levels = [int(x) for x in args.levels.split(",")]
    minutes = [float(x) for x in args.minutes.split(",")]
    minutes = minutes * len(levels) if len(minutes) == 1 else minutes
    if any(n < 1 or n > 1000 for n in levels) or len(minutes) != len(levels) or not all(0 < m <= 60 for m in minutes):
        p.error("levels must be 1-1000 conversations, with one --minutes (at most 60) or one per level")
    try:
        lo, hi = (float(x) for x in args.think.split(","))
    except ValueError:
        p.error("--think must be MIN,MAX seconds, e.g. 3,8")
    if not 0 <= lo <= hi <= 600:
        p.error("--think must satisfy 0 <= MIN <= MAX <= 600")
    if not 0 <= args.long_turns <= 5000:
        p.error("--long-turns must be 0-5000")
    base_port = free_port()
    settings = Settings(
        var_dir=Path(tempfile.mkdtemp(prefix="bench-load-")), database_url=args.database_url,
        nlu_model_dir=args.nlu_model or get_settings().nlu_model_dir, rec_model_dir=get_settings().rec_model_dir,
        nlu_port=free_port(), action_port=free_port(), rasa_port=base_port, gateway_port=free_port(),
        monitor_metrics_port=0, rasa_workers=args.rasa_workers, lock_store_url=args.lock_store_url,
        rate_ip_per_minute=0, rate_sessions_per_minute=0, rate_customer_per_minute=0,
    )  # fmt: skip
    settings = with_internal_tokens(settings)  # restarts and checks below use the same tokens
    services = up(settings, timeout=300)
    results: dict[str, Any] = {"protocol": __doc__.split("\n\n")[2].replace("\n", " "), "levels": []}
    try:
        for n, (users, mins) in enumerate(zip(levels, minutes, strict=True)):
            log.info("level %d: %d concurrent conversations for %.1f min (+%.0f s warm-up)", n + 1, users, mins,
                     WARMUP_S)  # fmt: skip
            before = cpu_snapshot(services)
            level = asyncio.run(run_level(settings.public_base_url, users, mins * 60, seed=n, think=(lo, hi)))
            cpu = cpu_per_turn(before, cpu_snapshot(services), sum(level.answered.values()))
            time.sleep(2)
            results["levels"].append(
                summary(level, mins * 60, missing_turns(settings.app_db_url, settings.tracker_db_url, level.answered))
                | {"think_seconds": [lo, hi], "cpu_ms_per_turn": cpu}
            )
            log.info("%s", results["levels"][-1])
        if args.long_turns:
            log.info("one conversation of %d turns", args.long_turns)
            before = cpu_snapshot(services)
            times, silent = long_conversation(settings.public_base_url, args.long_turns)
            cpu = cpu_per_turn(before, cpu_snapshot(services), len(times))
            results["long_conversation"] = long_summary(times, silent, cpu)
    finally:
        stop_all(services)
    database = "postgresql" if args.database_url.startswith("postgresql") else "sqlite"
    results.update(database=database, rasa_workers=args.rasa_workers)
    rows = [[r["concurrent_conversations"], r["turns"], r["turns_per_second"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
             r["errors"], r["missing_in_transcript"], r["missing_in_tracker"]] for r in results["levels"]]  # fmt: skip
    print(table(["conversations", "turns", "turns/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                 "missing (transcript)", "missing (tracker)"], rows))  # fmt: skip
    for r in results["levels"]:
        print(f"CPU ms per turn at {r['concurrent_conversations']} conversations: {r['cpu_ms_per_turn']}")
    if "long_conversation" in results:
        lc = results["long_conversation"]
        print(
            table(
                ["turns", "turns 6-15 median ms", "last 10 median ms", "late / early", "CPU ms per turn"],
                [
                    [
                        lc["turns"],
                        lc["turn_6_15_median_ms"],
                        lc["last_10_turns_median_ms"],
                        lc["late_vs_early"],
                        lc["cpu_ms_per_turn"]["total (services)"],
                    ]
                ],
            )
        )
    write_results("load", {f"{database}-{args.rasa_workers}-rasa{args.label}": results}, merge=True)


if __name__ == "__main__":
    main()
