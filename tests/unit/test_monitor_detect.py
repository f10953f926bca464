"""Spike detectors on binned negative rates: quiet streams stay quiet, real rises fire, floors and ceilings."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.detect import DetectorConfig, TopicDetector


def _stream(rng: np.random.Generator, n: int, rates: list[float]) -> list[tuple[int, int]]:
    return [(n, int(rng.binomial(n, p))) for p in rates]


def test_a_quiet_stream_rarely_looks_anomalous() -> None:
    rng = np.random.default_rng(0)
    d = TopicDetector()
    results = [d.update(n, k) for n, k in _stream(rng, 60, [0.3] * 2000)]
    assert sum(r.anomalous for r in results) / len(results) < 0.01
    assert abs(d.baseline - 0.3) < 0.05  # the baseline was learned from the prior 0.25


def test_a_sustained_rise_is_detected_and_does_not_become_the_baseline() -> None:
    rng = np.random.default_rng(1)
    d = TopicDetector()
    for n, k in _stream(rng, 60, [0.3] * 100):
        d.update(n, k)
    before = d.baseline
    spike = [d.update(n, k) for n, k in _stream(rng, 60, [0.45] * 12)]  # +50 % relative
    first = next(i for i, r in enumerate(spike) if r.anomalous)
    assert first <= 4 and {"ewma", "cusum"} & set(spike[first].reasons)
    assert all(r.anomalous for r in spike[first + 2 :])  # it keeps firing while it lasts
    assert d.baseline - before < 0.03  # far from the 0.45 of the incident


def test_the_volume_floor_and_the_ceiling() -> None:
    d = TopicDetector(DetectorConfig(min_volume=10, ceiling=0.8))
    quiet = d.update(5, 5)  # 100 % negative, but 5 messages are no evidence
    assert not quiet.anomalous and d.normal_bins == 0 and d.cusum == 0.0
    assert d.update(20, 17).reasons == ("ceiling",)  # before warm-up only the ceiling can fire


def test_state_survives_a_restart() -> None:
    rng = np.random.default_rng(2)
    d = TopicDetector()
    for n, k in _stream(rng, 40, [0.3] * 30):
        d.update(n, k)
    again = TopicDetector.restore(d.state())
    assert again.update(40, 30) == d.update(40, 30)


@pytest.mark.parametrize(("n", "k"), [(-1, 0), (10, -1), (10, 11)])
def test_bad_counts_are_refused(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="bad bin counts"):
        TopicDetector().update(n, k)
