"""The action server: rasa-sdk's server with a shared-secret check. ``python -m bot.action_server``.

rasa-sdk's own server answers anyone who can reach it (and allows any browser origin). Ours
wants ``Authorization: Bearer <ACTION_TOKEN>`` on every request except ``GET /health``; Rasa
sends it from the ``headers`` of ``action_endpoint`` in the generated endpoints.yml. With an
empty token (a hand-started server) the check is off and a warning says so: ``core.stack``
always generates one.
"""

from __future__ import annotations

import argparse
import logging
import os
from functools import partial

from rasa_sdk.endpoint import create_app_for_serve
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from bot.rasa_launch import bearer_matches  # stdlib-only, shared with Rasa's side
from core.errors import ConfigError
from core.pii import setup_logging
from core.settings import get_settings, require_secrets

log = logging.getLogger(__name__)
KEEP_ALIVE_S = 75  # longer than Rasa's client keeps idle connections (15 s)
OPEN_PATHS = {"/health"}


def create_app(executor: ActionExecutor, *, token: str) -> Sanic:
    """rasa-sdk's app (no cross-origin access) with the token check in front of every route but /health."""
    app = create_app_for_serve(executor, cors_origins="", keep_alive_timeout=KEEP_ALIVE_S)

    @app.on_request
    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS or bearer_matches(request.headers.get("authorization"), token):
            return None
        return response.json({"error": "missing or wrong action server token"}, status=401)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve ``bot.actions`` on ``--port`` (default ACTION_PORT) with the settings' ACTION_TOKEN."""
    settings = get_settings()
    p = argparse.ArgumentParser(prog="python -m bot.action_server")
    p.add_argument("-p", "--port", type=int, default=settings.action_port)
    args = p.parse_args(argv)
    setup_logging("%(asctime)s %(name)s: %(message)s")
    try:
        require_secrets(settings, "actions")
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc
    if not settings.action_token:
        log.warning("ACTION_TOKEN is empty: the action server answers anyone who can reach it")
    executor = ActionExecutor()
    executor.register_package("bot.actions")
    loader = AppLoader(factory=partial(create_app, executor, token=settings.action_token))
    app = loader.load()
    app.prepare(host=os.environ.get("SANIC_HOST", settings.host), port=args.port, workers=1)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
