"""``python -m bot.channels serve | add-user NAME --role ROLE | set-password NAME``.

Passwords are read from the ``STAFF_PASSWORD`` environment variable or asked for (never an argument,
so they stay out of shell history and process lists).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from typing import Any

from bot.channels.errors import ChannelError
from core.db import get_engine, upgrade
from core.errors import ConfigError
from core.pii import setup_logging
from core.settings import Settings, get_settings, require_secrets

log = logging.getLogger("bot.channels")


def _password() -> str:
    return os.environ.get("STAFF_PASSWORD") or getpass.getpass("password: ")


def server_options(settings: Settings, port: int) -> dict[str, Any]:
    """uvicorn's options for the gateway: forwarded headers are believed only from ``TRUSTED_PROXIES``.

    uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so anyone on the host could name a new
    address with each request and escape the per-address limits; without trusted proxies the peer's
    address is the client's, always.
    """
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {"host": settings.host, "port": port, "log_level": "warning", "proxy_headers": bool(proxies),
            "forwarded_allow_ips": proxies or None}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m bot.channels")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the gateway (web chat, console, Slack)")
    serve.add_argument("--port", type=int, default=None)
    add = sub.add_parser("add-user", help="create a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["agent", "risk", "admin"])
    add.add_argument("--slack-user-id", default=None, help="the person's Slack user id (Slack buttons act as them)")
    pw = sub.add_parser("set-password", help="change a staff password (signs them out everywhere)")
    pw.add_argument("username")
    args = p.parse_args(argv)
    setup_logging("%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per call to Rasa
    settings = get_settings()
    if args.command == "serve":
        import uvicorn

        from bot.channels.app import create_app

        port = args.port or settings.gateway_port
        try:
            require_secrets(settings, "gateway")
        except ConfigError as exc:
            log.error("%s", exc)
            raise SystemExit(2) from exc
        uvicorn.run(create_app(settings), **server_options(settings, port))
        return
    from bot.channels import auth

    upgrade(settings.app_db_url)
    try:
        if args.command == "add-user":
            auth.create_user(get_engine(settings.app_db_url), args.username, _password(), args.role, args.slack_user_id)
            log.info("created %s (%s)", args.username, args.role)
        else:
            auth.set_password(get_engine(settings.app_db_url), args.username, _password())
            log.info("password of %s changed", args.username)
    except ChannelError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 — the CLI's answer
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
