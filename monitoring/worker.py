"""The background job of the stack: ``python -m monitoring.worker [--once] [--interval S]``.

Each round: copy new turns from Rasa's tracker store (``monitoring.ingest``) or take them from its
event broker when ``EVENT_BROKER_URL`` is set (``monitoring.broker``; the tracker store is then read
every ``MONITOR_RECONCILE_SECONDS`` too, for the turns Rasa could not publish), run the sentiment
monitor over them (``monitoring.job``, checkpointed) and send due alert notifications
(``monitoring.sinks``: the Slack risk channel, a signed webhook). ``--once`` does one round and
exits (for cron). A failing database, NLU or sink is logged and retried next round.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.db import get_engine
from core.errors import ConfigError
from core.pii import setup_logging
from core.settings import Settings, get_settings
from monitoring.broker import BrokerInput, BrokerUnavailable
from monitoring.ingest import ingest_all
from monitoring.job import nlu_scorer, run_pass
from monitoring.metrics import WorkerMetrics
from monitoring.sinks import Sink, SlackRiskSink, WebhookSink, deliver_pending
from monitoring.stream import Monitor

log = logging.getLogger(__name__)
RECONCILE_GRACE_S = 10.0  # how long a turn may take through the event broker before the tracker store supplies it


def build_sinks(s: Settings) -> dict[str, Sink]:
    """The alert sinks the settings configure (none: alerts are only stored)."""
    sinks: dict[str, Sink] = {}
    if s.slack_bot_token and s.risk_slack_channel:
        client = WebClient(token=s.slack_bot_token, base_url=s.slack_api_url)
        sinks["slack"] = SlackRiskSink(client, s.risk_slack_channel)
    if s.alert_webhook_url:
        if not s.alert_webhook_secret:
            raise ConfigError("ALERT_WEBHOOK_URL is set but ALERT_WEBHOOK_SECRET is not: webhooks must be signed")
        sinks["webhook"] = WebhookSink(s.alert_webhook_url, s.alert_webhook_secret)
    return sinks


class BrokerTurns:
    """User turns from Rasa's event broker, reconciled with the tracker store every ``reconcile_s`` seconds.

    The queue is the fast path. Rasa drops the events it cannot publish while its broker connection is
    broken (its pika broker logs a "failed Pika event"), so those turns are in the tracker store only:
    every ``reconcile_s`` seconds (0: never), whether or not the broker answered, the tracker store is read
    from its own checkpoint as well, for the turns older than ``RECONCILE_GRACE_S`` (newer ones are still
    on their way through the queue). ``turn.message_id`` is unique, so a turn that arrives both ways is
    stored once. The first round reconciles, catching up on what happened while the monitor was stopped.
    """

    def __init__(
        self, broker: BrokerInput, tracker: Engine, app: Engine, reconcile_s: float,
        metrics: WorkerMetrics | None = None, clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.broker, self.tracker, self.app, self.reconcile_s = broker, tracker, app, reconcile_s
        self.metrics, self.clock, self.wall_clock = metrics, clock, wall_clock
        self.reconciled = 0
        self._due = clock()

    def __call__(self) -> int:
        """Store what is new (queue first, then the tracker store when due); returns how many turns.

        Raises :class:`BrokerUnavailable` after reconciling when the broker could not be read.
        """
        total, failure = 0, None
        try:
            for _ in range(100):  # at most 100 batches a round, so detection and delivery keep their pace
                n = self.broker.drain()
                total += n
                if n == 0:
                    break
        except BrokerUnavailable as exc:
            failure = exc
        if self.reconcile_s > 0 and self.clock() >= self._due:
            # turns younger than the grace period are the broker's to deliver (no double work, no false alarm)
            found = ingest_all(self.tracker, self.app, before=self.wall_clock() - RECONCILE_GRACE_S)
            self._due = self.clock() + self.reconcile_s
            if found:
                log.info("reconciled %d turns from the tracker store that the broker had not delivered", found)
                self.reconciled += found
                if self.metrics is not None:
                    self.metrics.reconciled.inc(found)
            total += found
        if failure is not None:
            if total and self.metrics is not None:
                self.metrics.ingested.inc(total)  # stored even though the round reports the broker's failure
            raise failure
        return total


def turn_source(s: Settings, metrics: WorkerMetrics | None = None) -> Callable[[], int]:
    """Where user turns come from: Rasa's event broker (reconciled with the tracker store) when configured,
    else the tracker store.

    The returned callable stores what is new in the ``turn`` table and returns how many turns.
    """
    app = get_engine(s.app_db_url)
    tracker = get_engine(s.tracker_db_url)
    if s.event_broker_url:
        broker = BrokerInput(s.event_broker_url, s.event_broker_queue, app)
        return BrokerTurns(broker, tracker, app, s.monitor_reconcile_seconds, metrics)
    return lambda: ingest_all(tracker, app)


def one_round(
    s: Settings, sinks: dict[str, Sink], metrics: WorkerMetrics | None = None, source: Callable[[], int] | None = None
) -> None:
    """Ingest, detect, deliver; each step's failure is logged and does not stop the others."""
    m = metrics or WorkerMetrics()
    app = get_engine(s.app_db_url)
    try:
        m.ingested.inc((source or turn_source(s))())
        m.steps.labels("ingest", "ok").inc()
    except (SQLAlchemyError, BrokerUnavailable) as exc:
        m.steps.labels("ingest", "error").inc()
        log.warning("ingest failed, retrying next round: %s", exc)
    try:
        scorer = nlu_scorer(s.url(s.nlu_port), s.nlu_token)
        while (counted := run_pass(app, Monitor, list(sinks), scorer=scorer, now=time.time())) > 0:
            m.counted.inc(counted)
        m.steps.labels("detect", "ok").inc()
    except SQLAlchemyError as exc:
        m.steps.labels("detect", "error").inc()
        log.warning("monitor pass failed, retrying next round: %s", exc.__class__.__name__)
    try:
        sent, failed = deliver_pending(app, sinks)
        m.deliveries.labels("sent").inc(sent)
        m.deliveries.labels("failed").inc(failed)
        m.steps.labels("deliver", "ok").inc()
    except SQLAlchemyError as exc:
        m.steps.labels("deliver", "error").inc()
        log.warning("alert delivery failed, retrying next round: %s", exc.__class__.__name__)
    m.last_round.set_to_current_time()


def run_forever(interval: float, stop: threading.Event) -> None:
    """A round every ``interval`` seconds until ``stop`` is set."""
    s = get_settings()
    sinks = build_sinks(s)
    metrics = WorkerMetrics(get_engine(s.app_db_url))
    source = turn_source(s, metrics)
    if s.monitor_metrics_port:
        metrics.serve(s.host, s.monitor_metrics_port)
        log.info("metrics on http://%s:%d/metrics", s.host, s.monitor_metrics_port)
    while not stop.is_set():
        try:
            one_round(s, sinks, metrics, source)
        except Exception:  # an unforeseen failure of one round must not end the monitor; the next round retries
            log.exception("monitor round failed; retrying in %.0f s", interval)
        stop.wait(interval)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(prog="python -m monitoring.worker")
    p.add_argument("--once", action="store_true", help="one round (ingest, detect, deliver), then exit (for cron)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    args = p.parse_args(argv)
    setup_logging()
    try:
        if args.once:
            s = get_settings()
            one_round(s, build_sinks(s))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_forever(args.interval, stop)
    except ConfigError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
