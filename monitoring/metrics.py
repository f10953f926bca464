"""Prometheus metrics of the monitor worker, served on ``MONITOR_METRICS_PORT`` (never published outside).

Counters for each step's outcome, turns ingested and counted, alert deliveries; gauges for the
time of the last round and the backlog (turns copied but not yet counted), read at scrape time.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from core.models import MonitorState, Turn
from monitoring.job import NAME


class Backlog(Collector):
    """Turns in the turn table that the monitor has not counted yet."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The backlog now (absent while the database is down)."""
        try:
            with Session(self.engine) as s:
                state = s.get(MonitorState, NAME)
                position = state.position if state else 0
                waiting = s.exec(select(func.count()).where(col(Turn.id) > position)).one()
        except SQLAlchemyError:
            return
        g = GaugeMetricFamily("storebot_monitor_backlog_turns", "turns copied from the tracker store, not yet counted")
        g.add_metric([], waiting)
        yield g


class WorkerMetrics:
    """The worker's registry and instruments."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.registry = CollectorRegistry()
        self.steps = Counter("storebot_monitor_steps_total", "worker steps by outcome", ["step", "outcome"],
                             registry=self.registry)  # fmt: skip
        self.ingested = Counter("storebot_monitor_ingested_total", "turns copied from the tracker store",
                                registry=self.registry)  # fmt: skip
        self.reconciled = Counter("storebot_monitor_reconciled_total",
                                  "turns found in the tracker store that the event broker had not delivered",
                                  registry=self.registry)  # fmt: skip
        self.counted = Counter("storebot_monitor_turns_total", "user turns counted by the monitor",
                               registry=self.registry)  # fmt: skip
        self.deliveries = Counter("storebot_alert_deliveries_total", "alert notifications by outcome", ["outcome"],
                                  registry=self.registry)  # fmt: skip
        self.last_round = Gauge("storebot_monitor_last_round_timestamp_seconds", "when the last round ended",
                                registry=self.registry)  # fmt: skip
        if engine is not None:
            self.registry.register(Backlog(engine))

    def serve(self, host: str, port: int) -> None:
        """Expose ``/metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
