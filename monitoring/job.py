"""One pass of the sentiment monitor over new turns, exactly once.

A pass reads the turns after the checkpoint (``monitor_state.position``, in ``turn.id`` order),
scores those without a sentiment through the NLU service's batch endpoint, feeds them to the
:class:`~monitoring.stream.Monitor`, and writes in **one transaction**: the scores, the incidents
and their pending deliveries (an outbox: ``monitoring.sinks`` sends them), the new position and
the monitor's whole state. After a crash the pass is simply repeated: every turn is counted once,
none is lost, and a notification is queued once. Sending never blocks detection.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.models import AlertDelivery, AlertIncident, AlertSilence, MonitorState, Turn, utcnow
from monitoring.rules import Notification, Silence
from monitoring.stream import Monitor, TurnIn

log = logging.getLogger(__name__)
NAME = "sentiment"
BATCH = 256  # the NLU batch endpoint's maximum
MAX_SKEW = 300.0  # turns stamped further ahead of the job's clock count at the job's time

Scorer = Callable[[list[str]], list[dict[str, object] | None]]


def nlu_scorer(url: str, token: str = "", timeout: float = 30.0) -> Scorer:
    """Sentiment for many texts from the NLU service (``POST /model/parse/batch``)."""

    def score(texts: list[str]) -> list[dict[str, object] | None]:
        out: list[dict[str, object] | None] = []
        for i in range(0, len(texts), BATCH):
            r = httpx.post(f"{url}/model/parse/batch", json={"texts": texts[i : i + BATCH], "token": token},
                           timeout=timeout)  # fmt: skip
            r.raise_for_status()
            out += [(p or {}).get("sentiment") for p in r.json()["results"]]
        return out

    return score


def silences(s: Session) -> list[Silence]:
    """The console's silences that have not ended, as the alert engine's matchers (times in epoch seconds)."""
    rows = s.exec(select(AlertSilence).where(col(AlertSilence.ends_at) > utcnow()))
    return [
        Silence({"dimension": r.dimension} | ({} if r.value == "*" else {"value": r.value}),
                r.starts_at.timestamp(), r.ends_at.timestamp())
        for r in rows
    ]  # fmt: skip


def _turn_in(t: Turn) -> TurnIn:
    product = None
    with contextlib.suppress(ValueError, AttributeError):  # malformed entities: no product topic
        entities = json.loads(t.entities or "[]")
        product = next((e.get("value") for e in entities if e.get("entity") == "product_id"), None)
    return TurnIn(ts=t.timestamp.timestamp(), negative=t.sentiment == "negative", intent=t.intent, channel=t.channel,
                  product=str(product) if product else None, text=t.text)  # fmt: skip


def run_pass(
    engine: Engine, monitor_factory: Callable[[], Monitor], sinks: list[str], *, scorer: Scorer | None = None,
    batch: int = 5000, now: float | None = None,
) -> int:  # fmt: skip
    """Count the next turns (up to ``batch``); returns how many. ``now`` (epoch seconds) closes quiet bins."""
    with Session(engine) as s:
        st = s.get(MonitorState, NAME) or MonitorState(name=NAME)
        monitor = monitor_factory()
        if st.state and st.state != "{}":
            monitor.restore(json.loads(st.state))
        monitor.engine.silences = silences(s)
        turns = list(s.exec(select(Turn).where(col(Turn.id) > st.position).order_by(col(Turn.id)).limit(batch)))
        if not _score_missing(turns, scorer):  # the NLU is down: stop before the first unscored turn, retry later
            turns = turns[: next(i for i, t in enumerate(turns) if t.sentiment is None and t.text.strip())]
        notes: list[Notification] = []
        for t in turns:
            if t.sentiment is None:  # an empty text has no sentiment
                monitor.skipped += 1
                continue
            turn = _turn_in(t)
            if now is not None and turn.ts > now + MAX_SKEW:  # a clock far ahead must not drag the watermark along
                turn = replace(turn, ts=now)
            notes += monitor.add(turn)  # scored turns are in the session: their scores commit below
        if now is not None and len(turns) < batch:  # caught up: time passes even without messages
            notes += monitor.advance(now - monitor.lateness)
        for note in notes:
            _record(s, note, sinks)
        if turns:
            st.position = int(turns[-1].id or st.position)
        st.state, st.updated_at = json.dumps(monitor.state()), utcnow()
        s.add(st)
        s.commit()
    if notes:
        log.info("monitor: %d turns, notifications: %s", len(turns), [(n.kind, n.incident_id) for n in notes])
    return len(turns)


def _score_missing(turns: list[Turn], scorer: Scorer | None) -> bool:
    """Give turns without a sentiment one; False when the NLU could not be asked (no scorer, NLU down).

    A text the NLU answers without a sentiment (a button payload) stays unscored and is skipped:
    waiting for it would stop the monitor for good.
    """
    missing = [t for t in turns if t.sentiment is None and t.text.strip()]
    if not missing:
        return True
    if scorer is None:
        return False
    try:
        scores = scorer([t.text for t in missing])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        log.warning("sentiment scoring failed (%s); will retry", exc.__class__.__name__)
        return False
    for t, sentiment in zip(missing, scores, strict=True):
        if isinstance(sentiment, dict):
            t.sentiment = str(sentiment.get("label"))
            score = sentiment.get("score")
            t.sentiment_score = float(score) if isinstance(score, int | float) else None
    return True


def _record(s: Session, note: Notification, sinks: list[str]) -> None:
    """Store the incident's news and queue one delivery per sink."""
    at = datetime.fromtimestamp(note.at, tz=UTC)
    incident = s.exec(select(AlertIncident).where(AlertIncident.engine_id == note.incident_id)).first()
    if incident is None:
        incident = AlertIncident(engine_id=note.incident_id, opened_at=at)
    incident.topics = json.dumps([k for k, _ in note.alerts])
    incident.evidence = json.dumps(dict(note.alerts))
    incident.state = "resolved" if note.kind == "resolved" else "firing"
    incident.resolved_at = at if note.kind == "resolved" else None
    s.add(incident)
    s.flush()
    assert incident.id is not None
    for sink in sinks:
        s.add(AlertDelivery(incident_id=incident.id, kind=note.kind, sink=sink))
