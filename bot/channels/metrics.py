"""Prometheus metrics of the gateway: requests by route and status, latency, and queue / alert gauges.

``GET /metrics`` (text exposition). The gauges are read from the database at scrape time, so
every gateway replica reports the same shared truth. When ``METRICS_TOKEN`` is set the endpoint
wants ``Authorization: Bearer <token>`` (the gateway is public; the scraper is not).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.channels.errors import NotAuthenticated
from core.models import AlertDelivery, AlertIncident, Handoff
from core.refusals import refusal_counts


class DatabaseGauges(Collector):
    """Handoffs by state (open ones), firing incidents, alert deliveries by status and refused inputs by kind,
    read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """One scrape's gauges; a database outage shows as ``storebot_database_up 0``."""
        up = GaugeMetricFamily("storebot_database_up", "1 when the app database answered this scrape")
        handoffs = GaugeMetricFamily("storebot_handoffs", "open handoffs by state", labels=["state"])
        firing = GaugeMetricFamily("storebot_alert_incidents_firing", "negative-sentiment incidents firing now")
        deliveries = GaugeMetricFamily("storebot_alert_deliveries", "alert notifications by status",
                                       labels=["status"])  # fmt: skip
        refused = CounterMetricFamily("storebot_refused_inputs", "inputs refused as not the conversation's "
                                      "own (forged ratings or card clicks, failed order checks)",
                                      labels=["kind"])  # fmt: skip
        try:
            with Session(self.engine) as s:
                by_state = dict(s.exec(select(Handoff.state, func.count()).where(
                    col(Handoff.state).in_(["queued", "claimed"])).group_by(Handoff.state)).all())  # fmt: skip
                n_firing = s.exec(select(func.count()).where(AlertIncident.state == "firing")).one()
                by_status = dict(
                    s.exec(select(AlertDelivery.status, func.count()).group_by(AlertDelivery.status)).all()
                )
                by_kind = refusal_counts(s)
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for state in ("queued", "claimed"):
            handoffs.add_metric([state], by_state.get(state, 0))
        firing.add_metric([], n_firing)
        for status in ("pending", "sent", "failed"):
            deliveries.add_metric([status], by_status.get(status, 0))
        for kind, n in by_kind.items():
            refused.add_metric([kind], n)
        yield from (up, handoffs, firing, deliveries, refused)


def instrument(app: FastAPI, engine: Engine, token: str = "") -> None:
    """Count and time every request by route template, and serve ``/metrics``."""
    registry = CollectorRegistry()
    requests = Counter("storebot_gateway_requests_total", "HTTP requests", ["method", "route", "status"],
                       registry=registry)  # fmt: skip
    buckets = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30)
    latency = Histogram("storebot_gateway_request_seconds", "HTTP request time", ["method", "route"],
                        registry=registry, buckets=buckets)  # fmt: skip
    registry.register(DatabaseGauges(engine))

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", None) or "(unmatched)"  # templates, never raw paths (unbounded labels)
            requests.labels(request.method, path, str(status)).inc()
            latency.labels(request.method, path).observe(time.perf_counter() - started)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(given.encode(), token.encode()):
                raise NotAuthenticated("metrics need Authorization: Bearer <METRICS_TOKEN>")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
