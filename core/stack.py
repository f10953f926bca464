"""Run the whole bot on one machine: ``python -m core.stack run [--no-chat]``.

Steps: 1 database schema and demo data · 2 train what is missing (NLU model,
Rasa core model) · 3 start NLU, action server, Rasa and the worker · 4 wait until
healthy · 5 chat in the terminal (or wait for Ctrl-C). Logs go to var/logs/.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from core.errors import ConfigError, SetupError
from core.internal_tokens import with_internal_tokens
from core.pii import setup_logging
from core.rasa_files import fingerprint, write_endpoints
from core.settings import ROOT, Settings, get_settings

log = logging.getLogger("stack")
PY = sys.executable


@dataclass
class Service:
    """A child process and how to tell that it is ready."""

    name: str
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now (for tests and benchmarks)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_ports_in_a_row(n: int, host: str = "127.0.0.1") -> int:
    """The first of ``n`` consecutive ports on ``host`` that nobody listens on right now (several Rasa workers)."""
    for _ in range(50):
        first = free_port(host)
        try:
            socks = [socket.create_server((host, first + i)) for i in range(n)]
        except OSError:
            continue
        for sock in socks:
            sock.close()
        return first
    raise SetupError(f"no {n} consecutive free ports on {host}")


def child_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for children: settings made explicit, offline model hub, no telemetry."""
    env = dict(os.environ)
    env.update({k.upper(): "" if v is None else str(v) for k, v in settings.model_dump().items()})
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "DATABASE_URL": settings.app_db_url,
            "TRACKER_DATABASE_URL": settings.tracker_db_url,
        }
    )
    env.update(extra or {})
    return env


def rasa_python(settings: Settings) -> Path:
    """The Rasa venv's interpreter, or a clear error saying how to build it."""
    py = settings.rasa_venv / "bin" / "python"
    if not py.exists():
        raise SetupError(f"Rasa venv missing at {settings.rasa_venv}: run `make setup` (scripts/setup.sh)")
    return py


def rasa_model_path(settings: Settings) -> Path:
    """Where the core-only Rasa model is kept."""
    return settings.var_dir / "models" / "rasa" / "core.tar.gz"


def nlu_model_state(settings: Settings) -> tuple[bool, str]:
    """Whether the launcher must (re)train the NLU model, and why.

    A model the launcher trains (shipped settings) is retrained when any training input changed
    (``nlu.fingerprint``). A model trained with other options, or one without a stamp outside
    ``var/``, is the user's: it is kept, with a warning when its inputs are stale.
    """
    from nlu.fingerprint import inputs_hash, read_stamp  # no torch: the launcher stays light

    model = settings.nlu_model_dir
    if not (model / "nlu_meta.json").exists():
        return True, "no NLU model yet (first run only, a few minutes on 2 cores)"
    stamp = read_stamp(model)
    if stamp is None:
        if model.resolve().is_relative_to(settings.var_dir.resolve()):
            return True, "the NLU model predates input stamps"
        log.warning("NLU model %s has no input stamp: kept as it is (retrain with python -m nlu.train)", model)
        return False, ""
    if stamp["inputs"] == inputs_hash():
        return False, ""
    if stamp.get("options"):
        log.warning(
            "NLU model %s was trained with custom options %s from older inputs: kept; retrain it to pick up"
            " the changes",
            model,
            sorted(stamp["options"]),
        )
        return False, ""
    return True, "the NLU training inputs changed (nlu/config.yml, nlu/data, bot/data/nlu.yml, the FAQ or nlu/*.py)"


def ensure_nlu_model(settings: Settings) -> None:
    """Train the NLU model when missing or when its inputs changed (progress bars in the terminal)."""
    needed, why = nlu_model_state(settings)
    if not needed:
        return
    log.info("training the NLU model: %s...", why)
    subprocess.run(
        [PY, "-m", "nlu.train", "--out", str(settings.nlu_model_dir)], check=True, env=child_env(settings), cwd=ROOT
    )


def ensure_faq_kb(settings: Settings) -> None:
    """Import the FAQ knowledge base when the file, the embedder or the database changed."""
    kb = settings.faq_kb
    if not kb.exists():
        raise SetupError(f"FAQ knowledge base {kb} not found (set FAQ_KB to your file)")
    stamp = settings.var_dir / "faq" / "kb.fingerprint"
    key = hashlib.sha256(kb.read_bytes() + settings.faq_embedder.encode() + settings.app_db_url.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == key:
        return
    log.info("importing the FAQ knowledge base %s...", kb)
    done = subprocess.run([PY, "-m", "nlu.faq", "import", str(kb)], env=child_env(settings), cwd=ROOT)
    if done.returncode != 0:
        raise SetupError(f"FAQ import of {kb} failed (see the message above); the previous knowledge base is kept")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)


def ensure_recommender(settings: Settings) -> None:
    """Import the demo catalog and behaviour log into an empty shop, and train a first model if none exists."""
    from sqlmodel import Session, func, select

    from core.db import get_engine
    from core.models import Product

    with Session(get_engine(settings.app_db_url)) as s:
        empty = s.exec(select(func.count()).select_from(Product)).one() == 0
    env = child_env(settings)
    if empty:
        log.info("empty catalog: importing the demo store's products and behaviour log...")
        subprocess.run([PY, "-m", "recommender", "demo"], check=True, env=env, cwd=ROOT)
    if not (settings.rec_model_dir / "current").exists():
        log.info("training the recommender (first run only)...")
        subprocess.run([PY, "-m", "recommender.train", "--out", str(settings.rec_model_dir)], check=True, env=env,
                       cwd=ROOT)  # fmt: skip


def ensure_staff_admin(settings: Settings) -> None:
    """First run: create the console's ``admin`` with a random password, kept in var/ (mode 600), never logged."""
    import secrets

    from sqlmodel import Session, func, select

    from bot.channels.auth import create_user
    from core.db import get_engine
    from core.models import StaffUser

    engine = get_engine(settings.app_db_url)
    with Session(engine) as s:
        if s.exec(select(func.count()).select_from(StaffUser)).one() > 0:
            return
    password = secrets.token_urlsafe(12)
    create_user(engine, "admin", password, "admin")
    path = settings.var_dir / "staff-admin-password.txt"
    path.write_text(password + "\n")
    path.chmod(0o600)
    log.info("staff console user 'admin' created; its password is in %s (readable by you only; change it with "
             "`python -m bot.channels set-password admin`)", path)  # fmt: skip


def ensure_rasa_model(settings: Settings) -> Path:
    """Train the core-only Rasa model when missing or when its inputs changed."""
    model = rasa_model_path(settings)
    stamp = model.with_suffix(".fingerprint")
    fp = fingerprint()
    if model.exists() and stamp.exists() and stamp.read_text() == fp:
        return model
    log.info("training the Rasa dialogue model...")
    argv = [
        str(rasa_python(settings)), str(ROOT / "bot" / "rasa_launch.py"), "train", "core",
        "--config", "bot/config.yml", "--domain", "bot/domain.yml", "--stories", "bot/data/rules.yml",
        "--out", str(model.parent), "--fixed-model-name", "core",
    ]  # fmt: skip
    subprocess.run(argv, check=True, env=child_env(settings), cwd=ROOT, stdout=subprocess.DEVNULL)
    stamp.write_text(fp)
    return model


def services(settings: Settings, endpoints: Path, model: Path) -> list[Service]:
    """The long-running processes of the embedded stack (``RASA_WORKERS`` Rasa processes on consecutive ports)."""
    if settings.rasa_workers > 1 and not settings.lock_store_url:
        raise SetupError("RASA_WORKERS > 1 needs LOCK_STORE_URL (Redis): without a shared lock store two workers "
                         "could process one conversation's messages at the same time")  # fmt: skip

    def rasa(port: int) -> list[str]:
        return [
            str(rasa_python(settings)), str(ROOT / "bot" / "rasa_launch.py"), "run",
            "-i", settings.host, "-p", str(port), "--enable-api",
            "--endpoints", str(endpoints), "--credentials", "bot/credentials.yml", "-m", str(model),
        ]  # fmt: skip

    status = "/status" + (f"?token={settings.rasa_token}" if settings.rasa_token else "")
    workers = [
        Service("rasa" if i == 0 else f"rasa-{i + 1}", rasa(settings.rasa_port + i),
                settings.url(settings.rasa_port + i) + status)
        for i in range(settings.rasa_workers)
    ]  # fmt: skip
    return [
        Service("nlu", [PY, "-m", "nlu.server"], settings.url(settings.nlu_port) + "/health"),
        Service(
            "actions",
            [PY, "-m", "bot.action_server", "-p", str(settings.action_port)],
            settings.url(settings.action_port) + "/health",
            env={"SANIC_HOST": settings.host},
        ),
        *workers,
        Service("gateway", [PY, "-m", "bot.channels", "serve"], settings.url(settings.gateway_port) + "/health"),
        Service("worker", [PY, "-m", "monitoring.worker"], ""),
    ]


def start(svc: Service, settings: Settings) -> None:
    """Spawn one service with its log in var/logs/<name>.log."""
    logs = settings.var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = (logs / f"{svc.name}.log").open("ab")
    svc.proc = subprocess.Popen(
        svc.argv,
        cwd=ROOT,
        env=child_env(settings, svc.env),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(svc: Service, timeout: float) -> None:
    """Poll the health URL until 200; fail early if the process died."""
    if not svc.health_url:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.proc is not None and svc.proc.poll() is not None:
            raise SetupError(f"{svc.name} exited with {svc.proc.returncode}; see var/logs/{svc.name}.log")
        try:
            if httpx.get(svc.health_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SetupError(f"{svc.name} not healthy after {timeout:.0f} s; see var/logs/{svc.name}.log")


def stop_all(running: list[Service]) -> None:
    """SIGTERM every child (process group), then SIGKILL what lingers."""
    for svc in running:
        if svc.proc and svc.proc.poll() is None:
            os.killpg(svc.proc.pid, signal.SIGTERM)
    for svc in running:
        if svc.proc:
            try:
                svc.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(svc.proc.pid, signal.SIGKILL)


def prepare(settings: Settings) -> tuple[Path, Path]:
    """Steps 1-2: schema, demo data, models, endpoints file (``settings`` with its internal tokens)."""
    from core import db, demo

    db.upgrade(settings.app_db_url)
    demo.seed(db.get_engine(settings.app_db_url))
    ensure_nlu_model(settings)
    ensure_faq_kb(settings)
    ensure_recommender(settings)
    ensure_staff_admin(settings)
    return write_endpoints(settings), ensure_rasa_model(settings)


def up(settings: Settings, timeout: float = 180) -> list[Service]:
    """Steps 3-4: start every service and wait for health; stops all on failure.

    Empty internal tokens are filled from var/ (generated on the first run): call
    :func:`core.internal_tokens.with_internal_tokens` first to know them (tests, benchmarks).
    """
    settings = with_internal_tokens(settings)
    endpoints, model = prepare(settings)
    running: list[Service] = []
    try:
        for svc in services(settings, endpoints, model):
            start(svc, settings)
            running.append(svc)
        for svc in running:
            wait_healthy(svc, timeout)
    except BaseException:
        stop_all(running)
        raise
    return running


class _Transcript:
    """Prints new messages once each (the reply to a send and the background poll may overlap)."""

    def __init__(self) -> None:
        self.last_id = 0
        self.buttons: list[str] = []
        self._lock = threading.Lock()

    def show(self, messages: list[dict[str, Any]]) -> None:
        with self._lock:
            for m in messages:
                if m["id"] <= self.last_id:
                    continue
                self.last_id = m["id"]
                if m["role"] == "customer" or (not m["text"] and not m["data"].get("buttons")):
                    continue  # what the user typed, or a payload for graphical channels (product card data)
                shown = []
                for b in m["data"].get("buttons", []):
                    self.buttons.append(b.get("payload") or b["title"])
                    shown.append(f"[{len(self.buttons)}: {b['title']}]")
                who = {"bot": "bot>", "agent": f"{m['author']} (support)>", "system": "--"}.get(m["role"], ">")
                print(who, m["text"], *shown)  # noqa: T201 — the CLI's UI


def chat(
    settings: Settings,
    read: Callable[[str], str] = input,
    customer: str = "cust0001",
    client: httpx.Client | None = None,
    follow: bool = True,
) -> None:
    """Step 5: a terminal chat through the gateway as ``customer`` (Ctrl-D or /stop to quit).

    Buttons are numbered: typing the number sends the button's payload. With ``follow``, a
    background poll prints what a support agent writes while you are not typing.
    """
    http = client or httpx.Client(base_url=settings.url(settings.gateway_port), timeout=40)
    transcript = _Transcript()
    try:
        token = http.post("/api/chat/sessions", json={"customer_id": customer}).json()["token"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        print(f"(gateway unreachable: {exc.__class__.__name__})")  # noqa: T201
        return
    auth = {"Authorization": f"Bearer {token}"}
    stop = threading.Event()
    if follow:
        threading.Thread(target=_follow, args=(http, auth, transcript, stop), daemon=True).start()
    print(f"Chat with the store bot as customer {customer} (type /stop to quit).")  # noqa: T201
    try:
        while True:
            try:
                text = read("you> ").strip()
            except EOFError:
                return
            if text == "/stop":
                return
            if not text:
                continue
            body: dict[str, Any] = {"text": text}
            if text.isdigit() and 0 < int(text) <= len(transcript.buttons):
                body["payload"] = transcript.buttons[int(text) - 1]
            try:
                r = http.post("/api/chat/messages", json=body, headers=auth)
                if r.status_code != 200:
                    print(f"(not sent: {r.json().get('detail', r.status_code)})")  # noqa: T201
                    continue
                transcript.show(r.json()["messages"])
            except httpx.HTTPError as exc:
                print(f"(bot unreachable: {exc.__class__.__name__})")  # noqa: T201
    finally:
        stop.set()


def _follow(http: httpx.Client, auth: dict[str, str], transcript: _Transcript, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            r = http.get("/api/chat/messages", params={"after": transcript.last_id, "wait": 20}, headers=auth)
            transcript.show(r.json().get("messages", []))
        except (httpx.HTTPError, ValueError):
            stop.wait(2)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m core.stack")
    p.add_argument("command", choices=["run", "prepare"])
    p.add_argument("--no-chat", action="store_true", help="serve until Ctrl-C instead of chatting")
    p.add_argument("--customer", default="cust0001", help="the demo customer you chat as (cust0001..cust0400)")
    args = p.parse_args(argv)
    setup_logging("%(asctime)s %(name)s: %(message)s")
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = with_internal_tokens(get_settings())
    started = time.monotonic()
    if args.command == "prepare":
        prepare(settings)
        return
    try:
        running = up(settings)
    except (SetupError, ConfigError) as exc:
        log.error("%s", exc)
        raise SystemExit(1) from exc
    base = settings.public_base_url
    log.info("ready in %.0f s: web chat %s/chat?customer=cust0001 · staff console %s/console (user admin, password "
             "in var/staff-admin-password.txt)", time.monotonic() - started, base, base)  # fmt: skip
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        if args.no_chat or not sys.stdin.isatty():
            while True:
                time.sleep(3600)
        else:
            chat(settings, customer=args.customer)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(running)


if __name__ == "__main__":
    main()
