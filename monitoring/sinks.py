"""Where alerts go: the Slack risk channel and a signed webhook, sent from the outbox with retries.

``deliver_pending`` sends each pending ``alert_delivery`` row once; a failure is recorded with its
error and retried with exponential backoff (30 s, 1 min, 2 min...) until ``max_attempts``, then
marked ``failed``. Detection never waits for a sink: it only writes rows.

Webhook requests carry ``X-Storebot-Timestamp`` and ``X-Storebot-Signature: v1=<hex>``, the
HMAC-SHA256 of ``"<timestamp>.<body>"`` with the shared secret (receivers should reject
timestamps older than five minutes, as Slack does).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any, Protocol

import httpx
from slack_sdk import WebClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import AlertDelivery, AlertIncident, utcnow

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Sends one incident notification; raises on failure (the outbox retries)."""

    def send(self, incident: AlertIncident, kind: str) -> None:
        """Deliver ``kind`` (firing | repeat | resolved) of ``incident``."""


def payload(incident: AlertIncident, kind: str) -> dict[str, Any]:
    """The JSON an incident is sent as."""
    return {
        "incident": incident.id, "kind": kind, "state": incident.state, "topics": json.loads(incident.topics),
        "evidence": json.loads(incident.evidence), "opened_at": incident.opened_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
    }  # fmt: skip


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256 of "timestamp.body">``."""
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POSTs the incident as signed JSON."""

    def __init__(self, url: str, secret: str, client: httpx.Client | None = None) -> None:
        """``client`` lets tests use a mock transport."""
        self.url, self.secret = url, secret
        self.client = client or httpx.Client(timeout=10)

    def send(self, incident: AlertIncident, kind: str) -> None:
        """One signed POST; a non-2xx answer is a failure."""
        body = json.dumps(payload(incident, kind)).encode()
        ts = str(int(time.time()))
        r = self.client.post(self.url, content=body, headers={
            "Content-Type": "application/json", "X-Storebot-Timestamp": ts,
            "X-Storebot-Signature": sign(self.secret, ts, body),
        })  # fmt: skip
        r.raise_for_status()


class SlackRiskSink:
    """Posts the incident to the risk channel with an Acknowledge button."""

    def __init__(self, client: WebClient, channel: str) -> None:
        """``channel``: the risk channel's id."""
        self.client, self.channel = client, channel

    def blocks(self, incident: AlertIncident, kind: str) -> list[dict[str, Any]]:
        """Header, one line per topic (rate against baseline), redacted examples, the button."""
        evidence: dict[str, dict[str, Any]] = json.loads(incident.evidence)
        title = {"firing": "Negative sentiment spike", "repeat": "Still going: negative sentiment spike",
                 "resolved": "Resolved: negative sentiment spike"}.get(kind, kind)  # fmt: skip
        lines = [f"{topic}: {e.get('negative')}/{e.get('messages')} negative ({e.get('rate', 0):.0%}, "
                 f"usual {e.get('baseline', 0):.0%}; {', '.join(e.get('tests', []))})"
                 for topic, e in evidence.items()]  # fmt: skip
        examples = [x for e in evidence.values() for x in e.get("examples", [])][:3]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": f"{title} #{incident.id}"[:150]}},
            {"type": "section", "text": {"type": "plain_text", "text": "\n".join(lines)[:2900] or " "}},
        ]
        if examples:
            quoted = "\n".join(f"“{x}”" for x in examples)
            blocks.append({"type": "section", "text": {"type": "plain_text", "text": quoted[:2900]}})
        if kind != "resolved" and incident.acked_at is None:
            blocks.append({"type": "actions", "elements": [{
                "type": "button", "text": {"type": "plain_text", "text": "Acknowledge"}, "action_id": "alert_ack",
                "value": str(incident.id)}]})  # fmt: skip
        return blocks

    def send(self, incident: AlertIncident, kind: str) -> None:
        """One post (Slack errors raise ``SlackApiError``)."""
        self.client.chat_postMessage(channel=self.channel, text=f"Negative sentiment incident #{incident.id}: {kind}",
                                     blocks=self.blocks(incident, kind))  # fmt: skip


def deliver_pending(
    engine: Engine, sinks: dict[str, Sink], *, max_attempts: int = 6, base_delay: float = 30.0, limit: int = 50
) -> tuple[int, int]:
    """Send what is due; returns (sent, failed this round). Unknown sinks fail at once."""
    now = utcnow()
    sent = failed = 0
    with Session(engine) as s:
        due = list(s.exec(select(AlertDelivery).where(AlertDelivery.status == "pending",
                                                      col(AlertDelivery.next_attempt_at) <= now)
                          .order_by(col(AlertDelivery.id)).limit(limit)))  # fmt: skip
        for d in due:
            incident = s.get(AlertIncident, d.incident_id)
            sink = sinks.get(d.sink)
            try:
                if sink is None or incident is None:
                    raise LookupError(f"no sink {d.sink!r} configured" if sink is None else "incident missing")
                sink.send(incident, d.kind)
                d.status, d.sent_at = "sent", utcnow()
                sent += 1
            except Exception as exc:  # any sink failure is recorded and retried, never raised
                d.attempts += 1
                d.last_error = f"{exc.__class__.__name__}: {exc}"[:1000]
                if d.attempts >= max_attempts or sink is None:
                    d.status = "failed"
                    failed += 1
                    log.error("alert delivery %s to %s failed for good: %s", d.id, d.sink, d.last_error)
                else:
                    d.next_attempt_at = now + timedelta(seconds=base_delay * 2 ** (d.attempts - 1))
            s.add(d)
            s.commit()
    return sent, failed


def acknowledge(engine: Engine, incident_id: int, who: str, via: str) -> AlertIncident | None:
    """Record who acknowledged an incident (the first acknowledgement counts)."""
    with Session(engine, expire_on_commit=False) as s:
        incident = s.get(AlertIncident, incident_id)
        if incident is None:
            return None
        if incident.acked_at is None:
            incident.acked_by, incident.acked_at, incident.ack_via = who[:100], utcnow(), via
            s.add(incident)
            s.commit()
        return incident
