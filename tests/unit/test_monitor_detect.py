"""Spike detectors on binned negative counts: quiet streams stay quiet, real rises fire, floors and ceilings."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.detect import DetectorConfig, TopicDetector


def _stream(rng: np.random.Generator, n: int, rates: list[float]) -> list[tuple[int, int]]:
    return [(n, int(rng.binomial(n, p))) for p in rates]


def test_a_quiet_stream_stays_quiet_and_learns_its_baseline() -> None:
    rng = np.random.default_rng(0)
    d = TopicDetector()
    results = [d.update(n, k) for n, k in _stream(rng, 20, [0.3] * 5000)]  # 100,000 messages
    assert sum(r.anomalous for r in results) == 0
    assert abs(d.baseline - 0.3) < 0.02  # learned from the prior 0.25


def test_a_sustained_rise_is_detected_and_does_not_become_the_baseline() -> None:
    rng = np.random.default_rng(1)
    d = TopicDetector()
    for n, k in _stream(rng, 20, [0.3] * 600):
        d.update(n, k)
    before = d.baseline
    spike = [d.update(n, k) for n, k in _stream(rng, 20, [0.45] * 60)]  # +50 % relative, 20 messages a bin
    first = next(i for i, r in enumerate(spike) if r.anomalous)
    assert first <= 20 and "cusum" in spike[first].reasons  # ~9 nats at ~0.055 nats a message: ~160 messages
    assert sum(r.anomalous for r in spike[first + 5 :]) >= 0.9 * len(spike[first + 5 :])  # it holds while it lasts
    assert d.baseline - before < 0.02  # far from the 0.45 of the incident
    after = [d.update(n, k) for n, k in _stream(rng, 20, [0.3] * 120)]
    assert not any(r.anomalous for r in after[60:])  # the capped CUSUM drains once the rate is normal again


def test_a_large_sudden_rise_fires_the_ewma_within_minutes() -> None:
    rng = np.random.default_rng(4)
    d = TopicDetector()
    for n, k in _stream(rng, 30, [0.3] * 300):
        d.update(n, k)
    spike = [d.update(n, k) for n, k in _stream(rng, 30, [0.7] * 5)]
    assert spike[0].anomalous or spike[1].anomalous
    assert any("ewma" in r.reasons for r in spike)


def test_the_volume_floor_and_the_ceiling() -> None:
    d = TopicDetector(DetectorConfig(min_volume=20, ceiling=0.8))
    few = d.update(5, 5)  # 100 % negative, but 5 messages are no evidence
    assert not few.anomalous and d.cusum == 0.0
    assert d.update(20, 17).reasons == ("ceiling",)  # before warm-up only the ceiling can fire


def test_quiet_bins_age_the_window_and_keep_the_baseline() -> None:
    d = TopicDetector(DetectorConfig(ewma_halflife_bins=1.0, baseline_halflife_bins=10.0))
    d.update(400, 100)
    for _ in range(100_000):  # weeks without a message: nothing underflows into a division by zero
        r = d.update(0, 0)
    assert r.window_n == 0 and r.z == 0 and not r.anomalous and abs(d.baseline - 0.25) < 1e-9


def test_state_survives_a_restart() -> None:
    rng = np.random.default_rng(2)
    d = TopicDetector()
    for n, k in _stream(rng, 40, [0.3] * 30):
        d.update(n, k)
    again = TopicDetector.restore(d.state())
    assert again.update(40, 30) == d.update(40, 30)
    fresh = TopicDetector.restore({"baseline": 0.3, "ewma": 1.0})  # an older checkpoint format: start afresh
    assert fresh.seen == 0 and fresh.baseline == DetectorConfig().prior_rate


@pytest.mark.parametrize(("n", "k"), [(-1, 0), (10, -1), (10, 11)])
def test_bad_counts_are_refused(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="bad bin counts"):
        TopicDetector().update(n, k)
