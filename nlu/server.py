"""The NLU HTTP service in Rasa's remote-NLU contract.

``POST /model/parse`` {"text", "message_id"?, "token"?} → intent, intent_ranking,
entities, sentiment, text (echoed). ``POST /model/parse/batch`` for bulk scoring,
``GET /health``, ``GET /metrics`` (Prometheus).
Run: ``python -m nlu.server`` (host/port/model from settings).
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field

from core import http_errors
from core.asgi import BodyLimit
from core.http_errors import MAX_JSON_DEPTH, PayloadStr, UnicodeStr
from core.pii import setup_logging
from nlu.errors import NLUError
from nlu.predict import Predictor

log = logging.getLogger(__name__)
MAX_TEXT_CHARS = 20_000
MAX_BATCH = 256
MAX_BODY_BYTES = 2_000_000
KEEP_ALIVE_S = 75


class ParseRequest(BaseModel):
    """Rasa's request body (it also sends ``message_id``, the sender id).

    Texts are valid Unicode, and a payload's JSON (``/intent{...}``, read by ``nlu.payload``) nests
    at most 32 levels: ``json.loads`` recurses, and near 1,000 levels failed with RecursionError.
    """

    text: PayloadStr = Field(max_length=MAX_TEXT_CHARS)
    message_id: UnicodeStr | None = None
    token: UnicodeStr | None = None


class BatchRequest(BaseModel):
    """Many texts at once (the monitoring job)."""

    texts: list[PayloadStr] = Field(min_length=1, max_length=MAX_BATCH)
    token: UnicodeStr | None = None


def _check_token(expected: str, *given: str | None) -> None:
    if expected and not any(g is not None and hmac.compare_digest(g.encode(), expected.encode()) for g in given):
        raise HTTPException(status_code=401, detail="missing or wrong NLU token")


def create_app(load: Callable[[], Predictor], *, token: str = "") -> FastAPI:
    """Build the service; ``load`` is called once at start-up to get the model."""
    registry = CollectorRegistry()
    requests = Counter("nlu_requests_total", "parse requests", ["endpoint", "status"], registry=registry)
    latency = Histogram("nlu_parse_seconds", "model time per request", ["endpoint"], registry=registry)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        try:
            state["predictor"] = await run_in_threadpool(load)
        except NLUError as exc:
            log.error("NLU model unavailable: %s", exc)
            state["error"] = str(exc)
        yield

    app = FastAPI(title="store-bot NLU", version="1", lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, max_json_depth=MAX_JSON_DEPTH)
    http_errors.install(app)  # 422 that never echoes the input (FastAPI's own failed on inf and lone surrogates)

    def predictor() -> Predictor:
        if "predictor" not in state:
            raise HTTPException(status_code=503, detail=state.get("error", "model is loading"))
        return state["predictor"]

    @app.post("/model/parse")
    async def parse(body: ParseRequest, token: str | None = Query(default=None)) -> dict[str, Any]:
        """Parse one message (Rasa's remote NLU endpoint)."""
        _check_token(token_expected, body.token, token)
        if not body.text.strip():
            requests.labels("parse", "422").inc()
            raise HTTPException(status_code=422, detail="text is empty")
        model = predictor()
        started = time.perf_counter()
        result = await run_in_threadpool(model.parse, body.text)
        latency.labels("parse").observe(time.perf_counter() - started)
        requests.labels("parse", "200").inc()
        return result

    @app.post("/model/parse/batch")
    async def parse_batch(body: BatchRequest, token: str | None = Query(default=None)) -> dict[str, Any]:
        """Parse up to 256 texts; empty texts get ``null``."""
        _check_token(token_expected, body.token, token)
        if any(len(t) > MAX_TEXT_CHARS for t in body.texts):
            raise HTTPException(status_code=422, detail=f"a text is over {MAX_TEXT_CHARS} characters")
        model = predictor()
        idx = [i for i, t in enumerate(body.texts) if t.strip()]
        started = time.perf_counter()
        parsed = await run_in_threadpool(model.parse_batch, [body.texts[i] for i in idx]) if idx else []
        latency.labels("batch").observe(time.perf_counter() - started)
        results: list[dict[str, Any] | None] = [None] * len(body.texts)
        for i, r in zip(idx, parsed, strict=True):
            results[i] = r
        requests.labels("batch", "200").inc()
        return {"results": results}

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 when the model is loaded, 503 otherwise."""
        if "predictor" in state:
            meta = state["predictor"].meta
            return JSONResponse({"status": "ok", "intents": len(meta.intents), "metrics": meta.metrics})
        return JSONResponse({"status": "unavailable", "error": state.get("error", "loading")}, status_code=503)

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus exposition."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    token_expected = token
    return app


def main() -> None:
    """Serve the model in settings.nlu_model_dir on settings.host:settings.nlu_port."""
    import uvicorn

    from core.errors import ConfigError
    from core.settings import get_settings, require_secrets
    from nlu.predict import load_predictor

    setup_logging()
    s = get_settings()
    try:
        require_secrets(s, "nlu")
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc
    catalog = Path(s.nlu_catalog) if s.nlu_catalog else None
    app = create_app(lambda: load_predictor(s.nlu_model_dir, s.nlu_threads, s.nlu_backend, catalog), token=s.nlu_token)
    # Keep idle connections longer than Rasa's HTTP client does (aiohttp: 15 s), so the client always closes
    # first: with uvicorn's 5 s, Rasa reused connections the server was closing and got a fallback reply.
    uvicorn.run(app, host=s.host, port=s.nlu_port, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)


if __name__ == "__main__":
    main()
