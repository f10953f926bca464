"""From anomalous bins to notifications, with Prometheus / Alertmanager semantics, in stream time.

Per alert (one topic): ``inactive → pending`` when its condition holds; ``pending → firing`` once it
has held for ``for_seconds`` (Prometheus ``for:``); a firing alert whose condition stops holding
keeps firing for ``keep_firing_for`` (``keep_firing_for:``) and then resolves. A pending alert
whose condition stops is dropped without a word.

Alerts are grouped into **incidents** by the labels in ``group_by`` (none: every alert firing at
the same time belongs to one incident, which is what one broken checkout looks like across intent,
product and channel topics). An incident sends exactly one ``firing`` notification ``group_wait``
after it opens (so the notice lists the topics that join it meanwhile),
a ``repeat`` every ``repeat_interval`` while it lasts, and one ``resolved`` when its last alert
resolves. A group that fires again within ``cooldown`` of resolving reopens the same incident
silently (flapping pages nobody). Silences mute matching alerts: they are tracked, never notified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RuleConfig:
    """Timing of alerts and incidents (seconds of stream time)."""

    # One bin: a condition must still hold at the next bin's close. It filters the brief excursions
    # behind most false alerts for about 1.5 minutes of delay (benchmarks/monitoring.py --sections tune).
    for_seconds: float = 60.0
    keep_firing_for: float = 900.0
    repeat_interval: float = 4 * 3600.0
    cooldown: float = 1800.0
    group_wait: float = 0.0  # wait this long after an incident opens, so its first notice lists all its topics
    group_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Silence:
    """Mute alerts whose labels contain ``matchers``, from ``start`` to ``end``."""

    matchers: dict[str, str]
    start: float
    end: float

    def mutes(self, labels: dict[str, str], t: float) -> bool:
        """Whether this silence covers an alert with ``labels`` at time ``t``."""
        return self.start <= t < self.end and all(labels.get(k) == v for k, v in self.matchers.items())


@dataclass
class Alert:
    """One topic's alert state."""

    key: str
    labels: dict[str, str]
    state: str = "inactive"  # inactive | pending | firing
    since: float = 0.0  # when the condition started holding (pending) or when it fired
    last_true: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Incident:
    """Alerts of one group firing together; notified once."""

    id: int
    group: tuple[tuple[str, str], ...]
    opened: float
    keys: set[str] = field(default_factory=set)
    resolved: float | None = None
    notified: bool = False
    quiet: bool = False  # reopened within the cooldown: nobody was told, so its end is not announced either
    last_notified: float = 0.0


@dataclass(frozen=True)
class Notification:
    """Something to tell the risk team: an incident opened, is still going, or is over."""

    kind: str  # firing | repeat | resolved
    incident_id: int
    at: float
    alerts: tuple[tuple[str, dict[str, Any]], ...]  # (alert key, evidence) of the incident's alerts


@dataclass
class AlertEngine:
    """Evaluates conditions bin by bin and emits notifications."""

    config: RuleConfig = field(default_factory=RuleConfig)
    silences: list[Silence] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    next_incident: int = 1

    def observe(
        self, key: str, labels: dict[str, str], active: bool, t: float, evidence: dict[str, Any] | None = None
    ) -> None:
        """Record whether ``key``'s condition holds at time ``t`` (call :meth:`flush` after a bin's topics).

        While it holds, the alert keeps the evidence of its worst moment (the highest ``rate``).
        """
        alert = self.alerts.setdefault(key, Alert(key=key, labels=dict(labels)))
        if active:
            alert.last_true = t
            fresh = dict(evidence or {})
            if alert.state == "inactive":
                alert.state, alert.since, alert.evidence = "pending", t, fresh
            elif fresh.get("rate", 0) >= alert.evidence.get("rate", 0):  # keep the worst moment's evidence
                alert.evidence = fresh
            if alert.state == "pending" and t - alert.since >= self.config.for_seconds:
                alert.state, alert.since = "firing", t
        else:
            expired = alert.state == "firing" and t - alert.last_true >= self.config.keep_firing_for
            if alert.state == "pending" or expired:  # pending drops silently; firing resolves after keep_firing_for
                alert.state = "inactive"

    def flush(self, t: float) -> list[Notification]:
        """Update incidents from the alerts' states at ``t``; the notifications to send."""
        out: list[Notification] = []
        firing = [a for a in self.alerts.values() if a.state == "firing" and not self._muted(a, t)]
        for alert in firing:
            incident = self._incident_for(alert, t)
            if incident.resolved is not None:  # a flap within the cooldown: the same incident, silently
                incident.resolved, incident.quiet = None, True
            incident.keys.add(alert.key)
        for incident in self.incidents.values():
            if not incident.notified and incident.resolved is None and t - incident.opened >= self.config.group_wait:
                incident.notified, incident.last_notified = True, t
                out.append(self._note("firing", incident, t))
        for incident in self.incidents.values():
            if incident.resolved is not None:
                continue
            live = {k for k in incident.keys if self.alerts[k].state == "firing"}
            if not live:
                incident.resolved = t
                if incident.notified and not incident.quiet:
                    out.append(self._note("resolved", incident, t))
            elif incident.notified and t - incident.last_notified >= self.config.repeat_interval:
                incident.last_notified, incident.quiet = t, False
                out.append(self._note("repeat", incident, t))
        for old in [
            i.id for i in self.incidents.values() if i.resolved is not None and t - i.resolved >= self.config.cooldown
        ]:
            del self.incidents[old]  # past its cooldown: a new firing opens a new incident
        return out

    def state(self) -> dict[str, Any]:
        """Alerts and open incidents as JSON-ready data (checkpointed with the stream position)."""
        return {
            "alerts": [vars(a) for a in self.alerts.values()],
            "incidents": [{**vars(i), "group": [list(g) for g in i.group], "keys": sorted(i.keys)}
                          for i in self.incidents.values()],
            "next_incident": self.next_incident,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` (after a restart)."""
        self.alerts = {a["key"]: Alert(**a) for a in state["alerts"]}
        self.incidents = {}
        for raw in state["incidents"]:
            i = Incident(**{**raw, "group": tuple(tuple(g) for g in raw["group"]), "keys": set(raw["keys"])})
            self.incidents[i.id] = i
        self.next_incident = int(state["next_incident"])

    def _incident_for(self, alert: Alert, t: float) -> Incident:
        group = tuple((k, alert.labels.get(k, "")) for k in self.config.group_by)
        for incident in self.incidents.values():
            if incident.group != group:
                continue
            if incident.resolved is None or t - incident.resolved < self.config.cooldown:
                return incident
        incident = Incident(id=self.next_incident, group=group, opened=t)
        self.incidents[incident.id] = incident
        self.next_incident += 1
        return incident

    def _muted(self, alert: Alert, t: float) -> bool:
        return any(s.mutes(alert.labels, t) for s in self.silences)

    def _note(self, kind: str, incident: Incident, t: float) -> Notification:
        alerts = tuple((k, dict(self.alerts[k].evidence)) for k in sorted(incident.keys))
        return Notification(kind=kind, incident_id=incident.id, at=t, alerts=alerts)
