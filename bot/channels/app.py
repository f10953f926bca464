"""The gateway's FastAPI application: web chat, staff console, Slack, and the housekeeping loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError

from bot.channels import console, web
from bot.channels.auth import Lockout
from bot.channels.conversations import ChatService
from bot.channels.errors import BadMessage, Forbidden, NotAuthenticated
from bot.channels.limits import Rate, RateLimited
from bot.channels.metrics import instrument
from bot.channels.rasa_client import RasaClient
from core import http_errors
from core.asgi import BodyLimit
from core.db import get_engine
from core.handoff import HandoffConflict, HandoffNotFound, InvalidTransition, NotYourHandoff
from core.pii import build_redactor
from core.settings import Settings, get_settings
from monitoring.bi import BadWindow

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
HOUSEKEEPING_SECONDS = 2.0
STATUS = {
    BadMessage: 422, NotAuthenticated: 401, Forbidden: 403, HandoffNotFound: 404,
    InvalidTransition: 409, HandoffConflict: 409, NotYourHandoff: 409, BadWindow: 422,
}  # fmt: skip


def build_service(settings: Settings, rasa: RasaClient | None = None) -> ChatService:
    """The chat service for these settings (Slack attaches itself in :func:`create_app`)."""
    return ChatService(
        engine=get_engine(settings.app_db_url),
        rasa=rasa or RasaClient(settings.rasa_urls, token=settings.rasa_token),
        public_url=settings.public_base_url,
        negative_score=settings.handoff_negative_score,
        handoff_timeout=timedelta(seconds=settings.handoff_timeout_seconds),
        identity_secret=settings.webchat_identity_secret,
        proof_key=settings.rasa_token,
        redactor=build_redactor(settings.pii_redact, settings.pii_patterns),
        customer_rate=Rate(settings.rate_customer_per_minute, settings.rate_customer_burst),
    )


def housekeeping(service: ChatService) -> None:
    """One round: expire stale queue entries, announce new handoffs, retry failed resumes."""
    for step in (service.expire_stale, service.announce_pending, service.resume_pending):
        try:
            step()
        except Exception:  # the loop must survive a database or Rasa hiccup; the next round retries
            log.exception("housekeeping step %s failed", step.__name__)


def create_app(settings: Settings | None = None, service: ChatService | None = None) -> FastAPI:
    """The gateway app. ``service`` lets tests inject a chat service with a fake Rasa."""
    settings = settings or get_settings()
    service = service or build_service(settings)
    typing = web.Typing()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await anyio.to_thread.run_sync(housekeeping, service)
                await asyncio.sleep(HOUSEKEEPING_SECONDS)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()

    app = FastAPI(title="Store bot channels gateway", lifespan=lifespan)
    app.state.service = service
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    instrument(app, service.engine, settings.metrics_token)
    app.include_router(web.router(service, typing))
    secure = settings.public_base_url.startswith("https://")
    app.include_router(
        console.router(
            service,
            typing,
            session_hours=settings.staff_session_hours,
            secure_cookies=secure,
            lockout=Lockout(settings.login_lockout_failures, settings.login_lockout_seconds),
        )
    )
    if settings.slack_bot_token and settings.slack_signing_secret:
        from bot.channels.slack import attach_slack

        attach_slack(app, service, settings)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/chat")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(console.LoginRequired)
    def to_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/console/login", status_code=303)

    for kind, code in STATUS.items():
        app.add_exception_handler(kind, _handler(code))
    http_errors.install(app)  # 422 that never echoes the input (FastAPI's own failed on inf and lone surrogates)

    @app.exception_handler(DBAPIError)
    def database_down(request: Request, exc: DBAPIError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
        detail = "the service is briefly unavailable; please send that again in a moment"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RateLimited)
    def too_many(request: Request, exc: RateLimited) -> Response:
        headers = {"Retry-After": str(int(exc.retry_after))}
        if request.url.path == "/console/login" and request.method == "POST":
            return RedirectResponse(f"/console/login?error={quote(str(exc))}", status_code=303, headers=headers)
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)

    limiter = service.limiter
    per_ip = Rate(settings.rate_ip_per_minute, settings.rate_ip_burst)
    per_path = {
        ("POST", "/api/chat/sessions"): (Rate(settings.rate_sessions_per_minute, settings.rate_sessions_burst),
                                         "new chat sessions"),
        ("POST", "/console/login"): (Rate(settings.rate_login_per_minute, settings.rate_login_burst),
                                     "sign-in attempts"),
    }  # fmt: skip

    @app.middleware("http")
    async def rate_limits(request: Request, call_next):  # type: ignore[no-untyped-def]
        path = request.url.path
        # Slack's few servers carry every Slack customer: signed requests, limited per customer instead
        if path != "/health" and not path.startswith(("/static/", "/slack/")):
            ip = request.client.host if request.client else "unknown"
            try:
                limiter.check(f"ip:{ip}", per_ip, "requests from your address")
                if special := per_path.get((request.method, path)):
                    limiter.check(f"{path}:{ip}", *special)
            except RateLimited as exc:
                return too_many(request, exc)
        return await call_next(request)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:"
        if request.url.path.startswith("/console"):
            csp += "; frame-ancestors 'none'"
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Content-Security-Policy", csp)
        return response

    # outermost: before anything reads; Slack's bodies are checked after their signature (bot.channels.slack)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_json_depth=http_errors.MAX_JSON_DEPTH,
                       depth_exempt=("/slack/",))  # fmt: skip
    return app


def _handler(code: int):  # type: ignore[no-untyped-def]
    """Typed errors → JSON with a message; console form posts go back to their page with the message."""

    async def handle(request: Request, exc: Exception) -> Response:
        referer = urlsplit(request.headers.get("referer", ""))
        html_form = request.method == "POST" and "text/html" in request.headers.get("accept", "")
        back = referer.path.startswith("/console/conversations/") or referer.path == "/console/alerts"
        if html_form and back and code != 401:  # a console form: back to its page, with the message
            return RedirectResponse(f"{referer.path}?error={quote(str(exc))}", status_code=303)
        if code == 401 and request.url.path.startswith("/console") and html_form:
            return RedirectResponse("/console/login", status_code=303)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handle
