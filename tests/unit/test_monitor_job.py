"""The monitor job against a real database: exactly-once passes, crash and NLU outage, the outbox and its sinks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from slack_sdk import WebClient
from sqlmodel import Session, create_engine, select

from core.models import AlertDelivery, AlertIncident, MonitorState, Turn, utcnow
from monitoring import job
from monitoring.job import run_pass
from monitoring.rules import RuleConfig
from monitoring.sinks import SlackRiskSink, WebhookSink, acknowledge, deliver_pending, sign
from monitoring.stream import Monitor
from tests.unit.slack_mock import SlackMock

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture()
def engine(sqlite_url: str):  # type: ignore[no-untyped-def]
    e = create_engine(sqlite_url)
    yield e
    e.dispose()


def _factory() -> Monitor:
    return Monitor(rules=RuleConfig(for_seconds=300, keep_firing_for=900, group_wait=300))


def _fill(engine, hours: float = 14, per_hour: int = 600, seed: int = 5, sentiment: bool = True) -> int:  # type: ignore[no-untyped-def]
    """Quiet traffic with a payments incident from hour 10 to 11; returns how many turns."""
    rng = np.random.default_rng(seed)
    n = int(hours * per_hour)
    times = np.sort(rng.uniform(0, hours * 3600, n))
    with Session(engine) as s:
        for i, t in enumerate(times):
            payments = rng.random() < 0.3
            p = 0.9 if payments and 10 * 3600 <= t < 11 * 3600 else 0.3
            label = "negative" if rng.random() < p else "neutral"
            at = START + timedelta(seconds=float(t))
            s.add(Turn(tracker_event_id=i + 1, sender_id=f"c{i % 50}", channel="web", text=f"message {i}",
                       intent="payment_issue" if payments else "track_order",
                       sentiment=label if sentiment else None, timestamp=at))  # fmt: skip
        s.commit()
    return n


def _deliveries(engine) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return [(d.incident_id, d.kind, d.sink) for d in s.exec(select(AlertDelivery).order_by(AlertDelivery.id))]  # type: ignore[arg-type]


def test_passes_in_chunks_queue_each_notification_once(engine) -> None:  # type: ignore[no-untyped-def]
    n = _fill(engine)
    counted = 0
    while (k := run_pass(engine, _factory, ["slack", "webhook"], batch=700)) > 0:
        counted += k
    assert counted == n and run_pass(engine, _factory, ["slack", "webhook"]) == 0
    assert _deliveries(engine) == [(1, "firing", "slack"), (1, "firing", "webhook"),
                                   (1, "resolved", "slack"), (1, "resolved", "webhook")]  # fmt: skip
    with Session(engine) as s:
        incident = s.exec(select(AlertIncident)).one()
        state = s.get(MonitorState, job.NAME)
    assert incident.state == "resolved" and "intent:payments" in json.loads(incident.topics)
    opened = incident.opened_at if incident.opened_at.tzinfo else incident.opened_at.replace(tzinfo=UTC)
    assert timedelta(hours=10) < opened - START <= timedelta(hours=10, minutes=20)
    assert state is not None and state.position == n


def test_a_crash_mid_pass_loses_nothing_and_doubles_nothing(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _fill(engine)
    real = job._record
    calls = {"n": 0}

    def crash_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "_record", crash_once)
    with pytest.raises(RuntimeError):
        run_pass(engine, _factory, ["webhook"], batch=100_000)
    with Session(engine) as s:
        assert s.get(MonitorState, job.NAME) is None and s.exec(select(AlertIncident)).all() == []
    run_pass(engine, _factory, ["webhook"], batch=100_000)
    assert _deliveries(engine) == [(1, "firing", "webhook"), (1, "resolved", "webhook")]


def test_unscored_turns_wait_for_the_nlu(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine, hours=1, per_hour=60, sentiment=False)

    def down(texts: list[str]) -> list[dict[str, object] | None]:
        raise httpx.ConnectError("refused")

    assert run_pass(engine, _factory, [], scorer=down) == 0  # nothing counted, nothing skipped
    scored = run_pass(engine, _factory, [], scorer=lambda texts: [{"label": "negative", "score": 0.9} for _ in texts])
    assert scored == 60
    with Session(engine) as s:
        assert {t.sentiment for t in s.exec(select(Turn))} == {"negative"}


def test_a_text_the_nlu_cannot_score_is_skipped_not_waited_for(engine) -> None:  # type: ignore[no-untyped-def]
    _fill(engine, hours=1, per_hour=60, sentiment=False)  # e.g. a button payload: parsed without a sentiment
    assert run_pass(engine, _factory, [], scorer=lambda texts: [None for _ in texts]) == 60
    with Session(engine) as s:
        state = json.loads(s.get(MonitorState, job.NAME).state)  # type: ignore[union-attr]
    assert state["skipped"] == 60 and state["detectors"] == {}


def _incident(engine) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        evidence = {"messages": 40, "negative": 30, "rate": 0.75, "baseline": 0.3, "tests": ["ewma"],
                    "examples": ["my card [card] failed"]}  # fmt: skip
        i = AlertIncident(
            engine_id=1,
            opened_at=START,
            topics='["intent:payments"]',
            evidence=json.dumps({"intent:payments": evidence}),
        )
        s.add(i)
        s.flush()
        assert i.id is not None
        s.add(AlertDelivery(incident_id=i.id, kind="firing", sink="webhook"))
        s.add(AlertDelivery(incident_id=i.id, kind="firing", sink="slack"))
        s.add(AlertDelivery(incident_id=i.id, kind="firing", sink="pager"))
        s.commit()
        return i.id


def test_webhook_is_signed_slack_gets_evidence_and_failures_are_retried_then_recorded(engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = _incident(engine)
    received: list[httpx.Request] = []
    up = {"ok": False}

    def hook(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200 if up["ok"] else 503)

    mock = SlackMock()
    try:
        sinks = {"webhook": WebhookSink("http://hooks/x", "s3cret", httpx.Client(transport=httpx.MockTransport(hook))),
                 "slack": SlackRiskSink(_client(mock), "CRISK")}  # fmt: skip
        assert deliver_pending(engine, sinks, base_delay=0) == (1, 1)  # slack sent; "pager" unknown: failed
        post = mock.called("chat.postMessage")[0]
        text = json.dumps(post["blocks"], ensure_ascii=False)
        assert post["channel"] == "CRISK" and "30/40 negative (75%, usual 30%" in text
        assert "my card [card] failed" in text and "alert_ack" in text
        up["ok"] = True
        assert deliver_pending(engine, sinks, base_delay=0) == (1, 0)  # the webhook's retry succeeds
    finally:
        mock.close()
    _, second = received  # the first attempt got 503
    ts = second.headers["X-Storebot-Timestamp"]
    assert second.headers["X-Storebot-Signature"] == sign("s3cret", ts, second.content)
    assert json.loads(second.content)["incident"] == incident_id
    with Session(engine) as s:
        rows = {d.sink: d for d in s.exec(select(AlertDelivery))}
    assert rows["webhook"].status == "sent" and rows["webhook"].attempts == 1 and "503" in rows["webhook"].last_error
    assert rows["pager"].status == "failed" and "no sink" in rows["pager"].last_error


def test_a_sink_that_stays_down_is_given_up_after_max_attempts(engine) -> None:  # type: ignore[no-untyped-def]
    _incident(engine)
    dead = WebhookSink(
        "http://hooks/x", "s", httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    )
    for _ in range(3):
        deliver_pending(engine, {"webhook": dead}, max_attempts=3, base_delay=0)
    with Session(engine) as s:
        d = s.exec(select(AlertDelivery).where(AlertDelivery.sink == "webhook")).one()
    assert (d.status, d.attempts) == ("failed", 3)


def test_the_first_acknowledgement_counts(engine) -> None:  # type: ignore[no-untyped-def]
    incident_id = _incident(engine)
    assert acknowledge(engine, incident_id, "rita", "console").acked_by == "rita"  # type: ignore[union-attr]
    assert acknowledge(engine, incident_id, "sam", "slack").acked_by == "rita"  # type: ignore[union-attr]
    assert acknowledge(engine, 999, "sam", "slack") is None


def _client(mock: SlackMock) -> WebClient:
    return WebClient(token="xoxb-test", base_url=mock.url)


def test_a_silenced_topic_is_tracked_but_not_notified(engine) -> None:  # type: ignore[no-untyped-def]
    from core.models import AlertSilence

    _fill(engine)
    with Session(engine) as s:  # the incident shows in the payments topic, and in all traffic and the web channel
        for dimension in ("intent", "all", "channel"):
            s.add(AlertSilence(dimension=dimension, starts_at=START, ends_at=utcnow() + timedelta(days=1),
                               created_by="rita"))  # fmt: skip
        s.commit()
    while run_pass(engine, _factory, ["webhook"], batch=100_000) > 0:
        pass
    assert _deliveries(engine) == []


def test_a_turn_from_a_clock_far_ahead_counts_at_the_jobs_time(engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        s.add(Turn(tracker_event_id=1, sender_id="c1", text="hi", sentiment="neutral",
                   timestamp=START + timedelta(days=365)))  # fmt: skip
        s.commit()
    now = START.timestamp() + 60
    assert run_pass(engine, _factory, [], now=now) == 1
    with Session(engine) as s:
        state = json.loads(s.get(MonitorState, job.NAME).state)  # type: ignore[union-attr]
    assert state["watermark"] == now  # not a year ahead: later turns are not all "late"
