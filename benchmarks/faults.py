"""Fault injection under traffic: what customers see while a part of the stack is down, and how fast it heals.

``python -m benchmarks.faults [--outage 15] [--customers 10]`` starts the production shape on this
machine with the project's launcher: PostgreSQL (a fresh database) for the app and the tracker, a
Redis lock store shared by two Rasa workers, RabbitMQ carrying Rasa's events to the monitor, the
trained NLU model. PostgreSQL, Redis and RabbitMQ are reached through fault-injection TCP proxies.

Protocol: ``--customers`` web-chat customers each send one message per second (a loop of an
order-tracking script) through the gateway for the whole run. Faults, one after another, each
followed by a quiet minute: a Rasa worker, the NLU service and the action server are killed
(SIGKILL) and restarted by the launcher's own ``start``; the database, the broker and the lock
store are cut off for ``--outage`` seconds (every connection reset, new ones refused) and then
accepted again. Per fault: turns sent while it was down and how they were answered (ok, the NLU
fallback, the gateway's "try again" note, a 503), and the recovery time: from the part being back
(healthy, or accepting connections) to the first turn answered normally that was sent after it.
At the end every turn the gateway answered is looked up in the transcript, Rasa's tracker and the
monitor's turn table; duplicated monitor turns are counted. Writes benchmarks/results/faults.json.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from benchmarks.common import missing_turns, table, write_results
from benchmarks.scratch_pg import scratch_databases, scratch_url
from benchmarks.tcp_proxy import TcpProxy
from core.internal_tokens import with_internal_tokens
from core.settings import Settings, get_settings
from core.stack import Service, free_port, free_ports_in_a_row, start, stop_all, up, wait_healthy

log = logging.getLogger("bench.faults")
SCRIPT = ["hello", "can you track my order", "it's 100234", "where is my order 100235?", "thanks"]


@dataclass
class Turn:
    """One customer message and how it went."""

    conversation: str
    sent: float
    done: float
    outcome: str  # ok | fallback | try-again | http 503 | http NNN | <exception>


@dataclass
class Traffic:
    """Customers chatting in background threads for the whole run."""

    base: str
    customers: int
    turns: list[Turn] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._customer, args=(i,), daemon=True) for i in range(self.customers)]
        for t in threads:
            t.start()
        return threads

    def _customer(self, i: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as http:
            conv, n = "", 0
            while not self.stop.is_set():
                if not conv or n % len(SCRIPT) == 0:
                    try:
                        r = http.post("/api/chat/sessions", json={"customer_id": f"cust{i + 1:04d}"})
                        r.raise_for_status()
                    except httpx.HTTPError:
                        time.sleep(1)
                        continue
                    conv = r.json()["conversation_id"]
                    http.headers["Authorization"] = f"Bearer {r.json()['token']}"
                started = time.monotonic()
                try:
                    r = http.post("/api/chat/messages", json={"text": SCRIPT[n % len(SCRIPT)]})
                    outcome = _outcome(r)
                except httpx.HTTPError as exc:
                    outcome = exc.__class__.__name__
                with self.lock:
                    self.turns.append(Turn(conv, started, time.monotonic(), outcome))
                n += 1
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def _outcome(r: httpx.Response) -> str:
    if r.status_code != 200:
        return f"http {r.status_code}"
    texts = " ".join(m["text"] for m in r.json()["messages"][1:])
    if "can't answer right now" in texts:
        return "try-again"
    if "rephrase" in texts:
        return "fallback"
    return "ok" if texts.strip() else "silence"


@dataclass
class Fault:
    """One injected fault: when it started and when the part was back."""

    name: str
    how: str
    down_at: float = 0.0
    back_at: float = 0.0


def kill_and_restart(svc: Service, settings: Settings) -> None:
    """SIGKILL the service's process group (Sanic forks workers) and start it again; returns when it is healthy."""
    assert svc.proc is not None
    os.killpg(svc.proc.pid, signal.SIGKILL)
    svc.proc.wait(timeout=30)
    time.sleep(2)
    start(svc, settings)
    wait_healthy(svc, 300)


def measure(fault: Fault, turns: list[Turn]) -> dict[str, Any]:
    """Outcomes of the turns sent while the part was down, and the recovery time after it was back."""
    during = [t for t in turns if fault.down_at <= t.sent < fault.back_at]
    after = sorted((t for t in turns if t.sent >= fault.back_at), key=lambda t: t.sent)
    first_ok = next((t for t in after if t.outcome == "ok"), None)
    outcomes: dict[str, int] = {}
    for t in during:
        outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
    failed_after = [t for t in after if first_ok and t.sent < first_ok.sent and t.outcome != "ok"]
    return {
        "fault": fault.name, "how": fault.how, "down_s": round(fault.back_at - fault.down_at, 1),
        "turns_while_down": len(during), "outcomes_while_down": outcomes,
        "answered_ok_while_down": outcomes.get("ok", 0),
        "recovery_s": round(first_ok.done - fault.back_at, 1) if first_ok else None,
        "failed_after_back": len(failed_after),
    }  # fmt: skip


def check_storage(direct_url: str, turns: list[Turn]) -> dict[str, int]:
    """Answered turns missing from the transcript, the tracker and the monitor; duplicated monitor turns."""
    answered: dict[str, int] = {}  # turns the bot answered (a "try again" note means Rasa did not take it)
    for t in turns:
        if t.outcome in {"ok", "fallback", "silence"}:
            answered[t.conversation] = answered.get(t.conversation, 0) + 1
    missing = missing_turns(direct_url, direct_url, answered, monitor=True)
    out = {"answered_turns": sum(answered.values()), **{f"missing_in_{k}": v for k, v in missing.items()}}
    engine = create_engine(direct_url)
    with engine.connect() as c:
        out["duplicated_monitor_turns"] = c.execute(text(
            "SELECT count(*) FROM (SELECT message_id FROM turn GROUP BY message_id HAVING count(*) > 1) d"
        )).scalar_one()  # fmt: skip
    engine.dispose()
    return out


def _delete_queue(queue: str) -> None:
    import pika

    try:
        conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
        conn.channel().queue_delete(queue)
        conn.close()
    except pika.exceptions.AMQPError:
        log.warning("could not delete the queue %s", queue)


def run(args: argparse.Namespace, proxies: dict[str, TcpProxy], name: str) -> dict[str, Any]:
    """The stack on database ``name`` behind ``proxies``: traffic, each fault in turn, the figures."""
    settings = Settings(
        var_dir=Path(tempfile.mkdtemp(prefix="bench-faults-")), database_url=scratch_url(name, proxies["pg"].port),
        nlu_model_dir=get_settings().nlu_model_dir, rec_model_dir=get_settings().rec_model_dir,
        nlu_port=free_port(), action_port=free_port(), rasa_port=free_ports_in_a_row(2), gateway_port=free_port(),
        monitor_metrics_port=0, rasa_workers=2, lock_store_url=f"redis://127.0.0.1:{proxies['redis'].port}/9",
        event_broker_url=f"amqp://guest:guest@127.0.0.1:{proxies['amqp'].port}/%2F", event_broker_queue=name,
        rate_ip_per_minute=0, rate_sessions_per_minute=0, rate_customer_per_minute=0,
    )  # fmt: skip
    settings = with_internal_tokens(settings)  # restarts and checks below use the same tokens
    services = up(settings, timeout=300)
    by_name = {s.name: s for s in services}
    traffic = Traffic(settings.public_base_url, args.customers)
    cut = f"cut off {args.outage:.0f} s"
    faults = [
        Fault("Rasa worker 2 of 2", "SIGKILL, restart"), Fault("NLU service", "SIGKILL, restart"),
        Fault("action server", "SIGKILL, restart"), Fault("PostgreSQL", cut), Fault("RabbitMQ", cut),
        Fault("Redis lock store", cut),
    ]  # fmt: skip
    actions = {
        "Rasa worker 2 of 2": lambda: kill_and_restart(by_name["rasa-2"], settings),
        "NLU service": lambda: kill_and_restart(by_name["nlu"], settings),
        "action server": lambda: kill_and_restart(by_name["actions"], settings),
    }
    cutoffs = {"PostgreSQL": proxies["pg"], "RabbitMQ": proxies["amqp"], "Redis lock store": proxies["redis"]}
    try:
        threads = traffic.run()
        time.sleep(args.quiet)
        for fault in faults:
            log.info("fault: %s (%s)", fault.name, fault.how)
            fault.down_at = time.monotonic()
            if fault.name in actions:
                actions[fault.name]()
            else:
                cutoffs[fault.name].down()
                time.sleep(args.outage)
                cutoffs[fault.name].up()
            fault.back_at = time.monotonic()
            time.sleep(args.quiet)
        traffic.stop.set()
        for t in threads:
            t.join(timeout=90)
        time.sleep(20)  # the monitor's last rounds
        return {
            "faults": [measure(f, traffic.turns) for f in faults],
            "storage": check_storage(scratch_url(name), traffic.turns),
            "customers": args.customers, "turns": len(traffic.turns),
            "protocol": " ".join(__doc__.split("\n\n")[2].split()),
        }  # fmt: skip
    finally:
        traffic.stop.set()
        stop_all(services)
        _delete_queue(name)


def main() -> None:
    """Start the cluster, run the traffic, inject each fault, print and write the figures."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--outage", type=float, default=15.0, help="seconds the database, broker and lock store stay down")
    p.add_argument("--customers", type=int, default=10, help="customers sending one message per second")
    p.add_argument("--quiet", type=float, default=60.0, help="seconds of normal traffic after each fault")
    args = p.parse_args()
    if not 1 <= args.customers <= 50 or not 1 <= args.outage <= 120:
        p.error("--customers 1-50 and --outage 1-120 s")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    proxies = {"pg": TcpProxy(5432), "redis": TcpProxy(6379), "amqp": TcpProxy(5672)}
    try:
        with scratch_databases("storebot_faults") as (name,):
            results = run(args, proxies, name)
    finally:
        for proxy in proxies.values():
            proxy.close()
    rows = [[f["fault"], f["how"], f["down_s"], f["turns_while_down"], f["answered_ok_while_down"],
             ", ".join(f"{k} {v}" for k, v in sorted(f["outcomes_while_down"].items())), f["recovery_s"],
             f["failed_after_back"]] for f in results["faults"]]  # fmt: skip
    print(table(["fault", "how", "down s", "turns while down", "answered normally", "outcomes", "recovery s",
                 "failed after back"], rows))  # fmt: skip
    print(table(list(results["storage"]), [list(results["storage"].values())]))
    write_results("faults", results)


if __name__ == "__main__":
    main()
