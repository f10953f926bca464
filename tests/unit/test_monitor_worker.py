"""One worker round end to end on a real SQLite database, and its Prometheus metrics."""

from __future__ import annotations

import httpx

from core.db import get_engine
from core.models import AlertIncident
from monitoring.metrics import WorkerMetrics
from monitoring.worker import one_round
from tests.unit.test_channels_web import gateway as gateway  # the fixture
from tests.unit.test_monitor_job import _fill


class Recorder:
    """A sink that keeps what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[int | None, str]] = []

    def send(self, incident: AlertIncident, kind: str) -> None:
        self.sent.append((incident.id, kind))


def test_a_round_counts_detects_delivers_and_reports_metrics(app_settings) -> None:  # type: ignore[no-untyped-def]
    engine = get_engine()
    n = _fill(engine)  # already scored: the (absent) NLU is not needed
    sink, metrics = Recorder(), WorkerMetrics(engine)
    one_round(app_settings, {"webhook": sink}, metrics)
    value = metrics.registry.get_sample_value
    assert value("storebot_monitor_turns_total") == n
    assert value("storebot_monitor_steps_total", {"step": "detect", "outcome": "ok"}) == 1
    assert value("storebot_monitor_backlog_turns") == 0
    assert sink.sent == [(1, "firing"), (1, "resolved")]
    assert value("storebot_alert_deliveries_total", {"outcome": "sent"}) == 2
    assert value("storebot_monitor_last_round_timestamp_seconds") > 0
    one_round(app_settings, {"webhook": sink}, metrics)  # nothing new: nothing counted or sent twice
    assert value("storebot_monitor_turns_total") == n and len(sink.sent) == 2


def test_gateway_metrics_count_routes_by_template(gateway) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = gateway
    client.get("/health")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert 'storebot_gateway_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'route="(unmatched)",status="404"' in text and "/no/such/page" not in text
    assert 'storebot_handoffs{state="queued"} 0.0' in text and "storebot_database_up 1.0" in text


def test_gateway_metrics_token(app_settings) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from bot.channels.app import create_app
    from bot.channels.conversations import ChatService
    from bot.channels.rasa_client import RasaClient

    service = ChatService(engine=get_engine(), rasa=RasaClient("http://rasa", transport=httpx.MockTransport(
        lambda r: httpx.Response(503))))  # fmt: skip
    client = TestClient(create_app(app_settings.model_copy(update={"metrics_token": "m3trics"}), service))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer m3trics"}).status_code == 200
