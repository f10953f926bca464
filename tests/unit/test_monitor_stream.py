"""The monitor over a stream of turns: one notification per incident, late and broken turns, redaction."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.detect import DetectorConfig
from monitoring.redact import redact
from monitoring.rules import RuleConfig
from monitoring.stream import Monitor, TurnIn, category, topics

HOUR = 3600.0


def _traffic(rng: np.random.Generator, start: float, hours: float, per_hour: float, p_neg: dict[str, float]
             ) -> list[TurnIn]:  # fmt: skip
    """Poisson arrivals; each turn's intent from a fixed mix, negative with its topic's probability."""
    n = rng.poisson(per_hour * hours)
    times = np.sort(rng.uniform(start, start + hours * HOUR, n))
    intents = rng.choice(["track_order", "payment_issue", "get_refund", "greet"], size=n, p=[0.4, 0.2, 0.2, 0.2])
    return [TurnIn(ts=float(t), negative=bool(rng.random() < p_neg.get(category(i), 0.3)), intent=str(i),
                   channel="web", text="my card 4111 1111 1111 1111 failed, mail me at a@b.com")
            for t, i in zip(times, intents, strict=True)]  # fmt: skip


def test_a_payment_incident_gives_one_firing_and_one_resolved() -> None:
    rng = np.random.default_rng(3)
    stream = _traffic(rng, 0, 12, 600, {})
    stream += _traffic(rng, 12 * HOUR, 1, 600, {"payments": 0.9})  # a broken checkout for an hour
    stream += _traffic(rng, 13 * HOUR, 6, 600, {})
    monitor = Monitor(DetectorConfig(), RuleConfig(for_seconds=300, keep_firing_for=900, group_wait=300))
    notes = [n for t in stream for n in monitor.add(t)] + monitor.advance(20 * HOUR)
    assert [n.kind for n in notes] == ["firing", "resolved"]
    fired, resolved = notes
    assert 12 * HOUR < fired.at <= 12 * HOUR + 20 * 60  # within 20 minutes of stream time
    assert "intent:payments" in dict(fired.alerts)  # the topic (a fifth of the traffic) is named
    keys = dict(resolved.alerts)
    assert keys["intent:payments"]["rate"] > 0.6 and keys["intent:payments"]["baseline"] < 0.35
    assert keys["intent:payments"]["examples"][0] == "my card [card] failed, mail me at [email]"
    assert 13 * HOUR < resolved.at <= 14 * HOUR  # within an hour of the end (15 min of it keep_firing_for)


def test_out_of_order_and_broken_turns() -> None:
    m = Monitor(DetectorConfig(bin_seconds=60), lateness=30)
    m.add(TurnIn(ts=100.0, negative=True, intent="greet"))
    m.add(TurnIn(ts=90.0, negative=False, intent="greet"))  # late, but within the allowed lateness
    assert m.bins[1].n["all"] == 2 and m.late == 0
    m.add(TurnIn(ts=200.0, negative=False))  # the watermark moves to 170: bins 1 and 2 close
    m.add(TurnIn(ts=70.0, negative=True))  # its bin is closed: counted in the oldest open one
    assert m.late == 1 and m.bins[2].negative["all"] == 1
    m.add(TurnIn(ts=float("nan"), negative=True))
    assert m.skipped == 1


def test_topics_of_a_turn() -> None:
    keys = [k for k, _ in topics(TurnIn(ts=0, negative=True, intent="payment_issue", channel="slack", product="p1"))]
    assert keys == ["all", "intent:payments", "channel:slack", "product:p1"]
    assert category(None) == category("greet") == "other"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("reach me at jo.doe+x@mail.example.com", "reach me at [email]"),
        ("call +44 20 7946 0958 now", "call [phone] now"),
        ("order 100234 is late @user", "order [number] is late @[user]"),
        ("see https://x.y/z?a=1", "see [link]"),
    ],
)
def test_redaction(text: str, want: str) -> None:
    assert redact(text) == want


def test_a_restart_in_the_middle_of_an_incident_changes_nothing() -> None:
    import json

    rng = np.random.default_rng(4)
    stream = _traffic(rng, 0, 10, 600, {}) + _traffic(rng, 10 * HOUR, 1, 600, {"payments": 0.9})
    stream += _traffic(rng, 11 * HOUR, 4, 600, {})
    cut = next(i for i, t in enumerate(stream) if t.ts > 10.3 * HOUR)  # the incident is open here
    rules = RuleConfig(for_seconds=300, keep_firing_for=900, group_wait=300)
    straight = Monitor(rules=rules)
    want = [(n.kind, n.incident_id, n.at) for t in stream for n in straight.add(t)]
    first = Monitor(rules=rules)
    got = [(n.kind, n.incident_id, n.at) for t in stream[:cut] for n in first.add(t)]
    second = Monitor(rules=rules)
    second.restore(json.loads(json.dumps(first.state())))  # through JSON, as the checkpoint stores it
    got += [(n.kind, n.incident_id, n.at) for t in stream[cut:] for n in second.add(t)]
    assert got == want and [k for k, _, _ in want] == ["firing", "resolved"]


def test_a_state_of_another_bin_width_restarts_the_stream_but_keeps_incidents() -> None:
    old = Monitor(DetectorConfig(bin_seconds=300))
    for i in range(40):
        old.add(TurnIn(ts=1_700_000_000.0 + 30 * i, negative=i % 3 == 0, intent="greet"))
    old.engine.next_incident = 7
    m = Monitor()  # one-minute bins
    m.restore(old.state())
    assert m.engine.next_incident == 7 and m.closed_before is None and m.detectors == {} and m.bins == {}
    m.add(TurnIn(ts=1_700_002_000.0, negative=False))  # carries on without replaying millions of bins


def test_a_long_outage_is_skipped_not_replayed_bin_by_bin() -> None:
    import time as clock

    m = Monitor()
    m.add(TurnIn(ts=1_700_000_000.0, negative=True, intent="greet"))
    started = clock.perf_counter()
    m.advance(1_700_000_000.0 + 3 * 365 * 86400)  # three years of silence
    assert clock.perf_counter() - started < 5 and m.bins == {}  # the bin with the turn was closed
    assert m.detectors["all"].seen == 1
