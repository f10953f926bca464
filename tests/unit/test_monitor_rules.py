"""Alert rules: pending/firing/resolved timing, one notification per incident, repeats, flaps, silences."""

from __future__ import annotations

from monitoring.rules import AlertEngine, RuleConfig, Silence

BIN = 300.0


def _run(engine: AlertEngine, series: dict[str, list[bool]]) -> list[tuple[float, str, int, tuple[str, ...]]]:
    """Feed per-topic conditions bin by bin; the notifications as (time, kind, incident, alert keys)."""
    out = []
    for i in range(max(map(len, series.values()))):
        t = i * BIN
        for key, values in series.items():
            engine.observe(key, {"topic": key}, values[i] if i < len(values) else False, t, {"bin": i})
        out += [(n.at, n.kind, n.incident_id, tuple(k for k, _ in n.alerts)) for n in engine.flush(t)]
    return out


def test_pending_then_firing_then_resolved_after_keep_firing_for() -> None:
    engine = AlertEngine(RuleConfig(for_seconds=BIN, keep_firing_for=2 * BIN))
    notes = _run(engine, {"intent:payment": [False, True, True, True, False, False, False, False]})
    # true at bins 1-3; fires at bin 2 (held one bin); last true at bin 3, so resolves at bin 5
    assert notes == [(2 * BIN, "firing", 1, ("intent:payment",)), (5 * BIN, "resolved", 1, ("intent:payment",))]


def test_a_blip_shorter_than_for_never_fires() -> None:
    engine = AlertEngine(RuleConfig(for_seconds=2 * BIN))
    assert _run(engine, {"channel:web": [True, True, False, True, False]}) == []


def test_one_incident_across_topics_and_repeats_while_it_lasts() -> None:
    engine = AlertEngine(RuleConfig(for_seconds=0, keep_firing_for=0, repeat_interval=3 * BIN))
    notes = _run(
        engine, {"intent:payment": [True] * 5 + [False], "channel:web": [False, True, True, True, True, False]}
    )
    assert [(kind, keys) for _, kind, _, keys in notes] == [
        ("firing", ("intent:payment",)),
        ("repeat", ("channel:web", "intent:payment")),
        ("resolved", ("channel:web", "intent:payment")),
    ]
    assert {incident for _, _, incident, _ in notes} == {1}


def test_a_flap_within_the_cooldown_reopens_silently() -> None:
    engine = AlertEngine(RuleConfig(for_seconds=0, keep_firing_for=0, cooldown=4 * BIN))
    notes = _run(engine, {"t": [True, False, True, False, False, False, False, False, True]})
    assert [(kind, incident) for _, kind, incident, _ in notes] == [("firing", 1), ("resolved", 1), ("firing", 2)]


def test_grouping_by_a_label_separates_incidents() -> None:
    engine = AlertEngine(RuleConfig(for_seconds=0, group_by=("topic",)))
    notes = _run(engine, {"a": [True, True], "b": [True, True]})
    assert sorted((kind, keys) for _, kind, _, keys in notes) == [("firing", ("a",)), ("firing", ("b",))]


def test_silenced_alerts_are_never_notified() -> None:
    engine = AlertEngine(RuleConfig(for_seconds=0), silences=[Silence({"topic": "a"}, 0, 10 * BIN)])
    notes = _run(engine, {"a": [True] * 3, "b": [False, True, True]})
    assert [(kind, keys) for _, kind, _, keys in notes] == [("firing", ("b",))]
