"""The monitor: user turns in, notifications out (binning, topics, detectors, alert rules).

Turns may arrive late or out of order (several Rasa workers, clock skew between hosts). A bin
closes when the watermark — the newest timestamp seen minus ``lateness`` — passes its end; a turn
older than an already closed bin is counted in the oldest open bin instead of being lost (and
counted in ``late``). Turns without a sentiment or a timestamp are skipped and counted.

Topics of a turn: ``all``, ``intent:<category>`` (orders, payments...), ``channel:<name>`` and
``product:<id>`` when the turn names a product.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from monitoring.detect import DetectorConfig, TopicDetector
from monitoring.redact import redact
from monitoring.rules import AlertEngine, Notification, RuleConfig

CATEGORIES = {
    "orders": {"track_order", "cancel_order", "change_order", "place_order", "inform"},
    "shipping": {"delivery_options", "delivery_period", "change_shipping_address", "set_up_shipping_address"},
    "payments": {"payment_issue", "check_payment_methods", "check_invoice", "get_invoice"},
    "refunds": {"get_refund", "track_refund", "check_refund_policy", "check_cancellation_fee"},
    "account": {"create_account", "delete_account", "edit_account", "recover_password", "registration_problems",
                "switch_account", "newsletter_subscription"},
    "support": {"contact_customer_service", "contact_human_agent", "complaint", "review", "faq_feedback"},
    "shopping": {"ask_recommendation", "rec_feedback"},
}  # fmt: skip
_CATEGORY_OF = {intent: cat for cat, intents in CATEGORIES.items() for intent in intents}
EXAMPLES_PER_ALERT = 3
MAX_QUIET_BINS = 7 * 24 * 60  # after a longer silence the empty bins are skipped, not closed one by one


@dataclass(frozen=True)
class TurnIn:
    """What the monitor needs of a user turn."""

    ts: float  # seconds since the epoch
    negative: bool
    intent: str | None = None
    channel: str | None = None
    product: str | None = None
    text: str = ""


def category(intent: str | None) -> str:
    """The intent's category (``other`` for small talk and unknown intents)."""
    return _CATEGORY_OF.get(intent or "", "other")


def topics(turn: TurnIn) -> list[tuple[str, dict[str, str]]]:
    """(key, labels) of every topic the turn counts in."""
    out = [("all", {"dimension": "all", "value": "all"})]
    out.append((f"intent:{category(turn.intent)}", {"dimension": "intent", "value": category(turn.intent)}))
    if turn.channel:
        out.append((f"channel:{turn.channel}", {"dimension": "channel", "value": turn.channel}))
    if turn.product:
        out.append((f"product:{turn.product}", {"dimension": "product", "value": turn.product}))
    return out


@dataclass
class _Bin:
    n: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    negative: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Monitor:
    """Stream state: open bins, one detector per topic, the alert engine."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    rules: RuleConfig = field(default_factory=RuleConfig)
    lateness: float = 60.0
    engine: AlertEngine = field(init=False)
    detectors: dict[str, TopicDetector] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    bins: dict[int, _Bin] = field(default_factory=dict)
    closed_before: int | None = None  # bins with an index below this are closed
    watermark: float = -math.inf
    late: int = 0
    skipped: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)  # the newest redacted negative texts per topic

    def __post_init__(self) -> None:
        """Build the alert engine from the rule config."""
        self.engine = AlertEngine(self.rules)

    def add(self, turn: TurnIn) -> list[Notification]:
        """Count one turn; returns the notifications of the bins it closed."""
        if not math.isfinite(turn.ts):
            self.skipped += 1
            return []
        index = int(turn.ts // self.detector.bin_seconds)
        if self.closed_before is not None and index < self.closed_before:
            self.late += 1
            index = self.closed_before
        b = self.bins.setdefault(index, _Bin())
        for key, labels in topics(turn):
            self.labels.setdefault(key, labels)
            b.n[key] += 1
            if turn.negative:
                b.negative[key] += 1
                if len(b.examples[key]) < EXAMPLES_PER_ALERT and turn.text:
                    b.examples[key].append(redact(turn.text))
        self.watermark = max(self.watermark, turn.ts)
        return self.advance(self.watermark - self.lateness)

    def advance(self, until: float) -> list[Notification]:
        """Close every bin that ends at or before ``until`` (also when no turn arrives: quiet hours)."""
        out: list[Notification] = []
        if not self.bins and self.closed_before is None:
            return out
        last = int(until // self.detector.bin_seconds)  # bins with index < last have ended
        first = self.closed_before if self.closed_before is not None else min(self.bins)
        if last - first > MAX_QUIET_BINS:  # a long outage: close the bins that hold turns, skip the empty rest
            for index in sorted(i for i in self.bins if i < last - MAX_QUIET_BINS):
                out += self._close(index)
            first = max(first, last - MAX_QUIET_BINS)
        for index in range(first, last):
            out += self._close(index)
        if last > first:
            self.closed_before = last
        return out

    def state(self) -> dict[str, Any]:
        """Everything needed to continue after a restart, as JSON-ready data."""
        return {
            "bin_seconds": self.detector.bin_seconds,
            "detectors": {k: d.state() for k, d in self.detectors.items()},
            "labels": self.labels,
            "bins": {str(i): {"n": dict(b.n), "negative": dict(b.negative), "examples": dict(b.examples)}
                     for i, b in self.bins.items()},
            "closed_before": self.closed_before,
            "watermark": self.watermark if math.isfinite(self.watermark) else None,
            "late": self.late,
            "skipped": self.skipped,
            "examples": self.examples,
            "engine": self.engine.state(),
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`: the same bins, baselines, pending alerts and open incidents.

        A state saved with another bin width keeps its alerts and incidents but starts the
        stream and the detectors afresh (its bin numbers and baselines mean something else).
        """
        self.engine.restore(state["engine"])
        if state.get("bin_seconds") != self.detector.bin_seconds:
            return
        self.detectors = {k: TopicDetector.restore(v, self.detector) for k, v in state["detectors"].items()}
        self.labels = {k: dict(v) for k, v in state["labels"].items()}
        self.bins = {}
        for index, raw in state["bins"].items():
            b = _Bin()
            b.n.update(raw["n"])
            b.negative.update(raw["negative"])
            b.examples.update({k: list(v) for k, v in raw["examples"].items()})
            self.bins[int(index)] = b
        self.closed_before = state["closed_before"]
        self.watermark = -math.inf if state["watermark"] is None else float(state["watermark"])
        self.late, self.skipped = int(state["late"]), int(state["skipped"])
        self.examples = {k: list(v) for k, v in state.get("examples", {}).items()}

    def _close(self, index: int) -> list[Notification]:
        b = self.bins.pop(index, _Bin())
        t = (index + 1) * self.detector.bin_seconds
        for key in set(self.detectors) | set(b.n):
            d = self.detectors.setdefault(key, TopicDetector(self.detector))
            r = d.update(b.n.get(key, 0), b.negative.get(key, 0))
            if b.examples.get(key):
                self.examples[key] = (b.examples[key] + self.examples.get(key, []))[:EXAMPLES_PER_ALERT]
            evidence: dict[str, Any] = {
                "messages": round(r.window_n), "negative": round(r.window_negative), "rate": round(r.window_rate, 4),
                "baseline": round(r.baseline, 4), "z": round(r.z, 2), "cusum": round(r.cusum, 2),
                "tests": list(r.reasons), "examples": self.examples.get(key, []),
            }  # fmt: skip
            self.engine.observe(key, self.labels[key], r.anomalous, t, evidence)
        return self.engine.flush(t)
