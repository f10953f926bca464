"""The monitoring benchmark's stream builder and one tiny spike trial (the full run is benchmarks/monitoring.py)."""

from __future__ import annotations

import itertools

import numpy as np

from benchmarks.monitoring import Pool, Setup, mix, score_spikes, spike_trials, stream


def _pool() -> Pool:
    return Pool(negative=[f"bad {i}" for i in range(32)], other=[f"ok {i}" for i in range(68)])


def test_stream_volumes_and_rates() -> None:
    rng = np.random.default_rng(0)
    turns = stream(rng, _pool(), 0, 10, mix(1000), {"payment_issue": 0.9})
    assert 9000 < len(turns) < 11000 and all(a.ts <= b.ts for a, b in itertools.pairwise(turns))
    pay = [t for t in turns if t.intent == "payment_issue"]
    other = [t for t in turns if t.intent != "payment_issue"]
    assert abs(np.mean([t.negative for t in pay]) - 0.9) < 0.05
    assert abs(np.mean([t.negative for t in other]) - 0.32) < 0.03
    assert all(t.text.startswith("bad") == t.negative for t in turns)


def test_a_spike_trial_is_detected_once() -> None:
    r = score_spikes(spike_trials(_pool(), 600, trials=1, seed=1, before_hours=12), 600, Setup())
    assert r["detected"] == 1 and r["firing_notices_per_incident"] == [1] and r["delay_min_median"] < 60
    assert r["false_alerts_before_spike"] == 0
