"""Spike detection on the negative-message rate of one topic, bin by bin.

Each topic (an intent category, a product, a channel) has its own :class:`TopicDetector`. The
stream is cut into short time bins (one minute); a bin with ``n`` messages of which ``k`` are
negative is judged against the topic's learned baseline rate ``p0``. Counts, not rates, are what
the tests use, so a quiet topic's bin of 3 messages weighs as little as it should. Three tests,
any of which makes the bin *anomalous*:

- **CUSUM** of the binomial log-likelihood ratio of ``p1 = p0·(1 + shift)`` against ``p0``:
  ``S = max(0, S + k·ln(p1/p0) + (n-k)·ln((1-p1)/(1-p0)))`` above ``cusum_h``. This is the
  sequential test that detects a rise of the designed size fastest for a given false-alarm rate
  (Lorden; Page's CUSUM on Bernoulli observations); it holds while the evidence lasts and falls
  back to 0 once the rate is normal again (``S`` is capped so a long incident ends promptly).
  One CUSUM runs per designed shift (``shifts``): +50 % for a moderate rise that lasts, ×3 for a
  broken checkout, which the +50 % design would only see after twice as many messages.
- **EWMA** of the counts (half-life ``ewma_halflife_bins``): the z-score of the smoothed negative
  count against ``p0``, with the smoothed sum's own variance, above ``ewma_sigmas`` — a large
  rise within a few minutes. It needs ``min_volume`` messages in its window (the volume floor).
- a hard **ceiling** on the window's raw rate: the baseline does not matter when most messages
  are angry (same floor).

The baseline is the rate of the last day or so (counts decayed with half-life
``baseline_halflife_bins``), learned from normal bins; anomalous bins count ``anomaly_weight``
times as much, so an incident does not teach the detector that anger is normal, while a change
that lasts for days does become the new normal. Until ``warmup_messages`` have been seen only the
ceiling can fire. Turning anomalous bins into alerts (pending, firing, resolved) is the job of
the alert rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DetectorConfig:
    """Tunables of the detectors (defaults chosen with ``benchmarks/monitoring.py --sections tune``)."""

    bin_seconds: int = 60  # width of a time bin
    min_volume: int = 20  # the EWMA and the ceiling need this many messages in their window
    baseline_halflife_bins: float = 1440.0  # the baseline is about the last day's rate
    anomaly_weight: float = 0.04  # anomalous bins teach the baseline 25 times less than normal ones
    prior_rate: float = 0.25  # baseline before any data
    warmup_messages: int = 300  # only the ceiling fires before the baseline has seen this many
    shifts: tuple[float, ...] = (0.5, 2.0)  # relative rises the CUSUMs are designed for (p1 = p0 · (1 + shift))
    cusum_h: float = 9.0  # CUSUM decision threshold (nats of evidence)
    cusum_cap: float = 1.2  # S never exceeds cusum_cap · cusum_h, so it drops below h soon after an incident
    ewma_halflife_bins: float = 3.0  # half-life of the EWMA window
    ewma_sigmas: float = 4.5  # EWMA limit (z of the window's negative count)
    ceiling: float = 0.8  # a window rate above this is anomalous whatever the baseline


@dataclass(frozen=True)
class BinResult:
    """What one bin showed: its counts, the EWMA window's, the baseline, and which tests fired."""

    n: int
    negative: int
    window_n: float
    window_negative: float
    baseline: float
    z: float  # the EWMA window's z-score
    cusum: float
    reasons: tuple[str, ...]

    @property
    def window_rate(self) -> float:
        """The negative rate of the EWMA window (0 when empty)."""
        return self.window_negative / self.window_n if self.window_n else 0.0

    @property
    def anomalous(self) -> bool:
        """Whether any test fired."""
        return bool(self.reasons)


def _decay(halflife: float) -> float:
    return 0.5 ** (1.0 / halflife)


@dataclass
class TopicDetector:
    """Baseline, EWMA and CUSUM state of one topic."""

    config: DetectorConfig = field(default_factory=DetectorConfig)
    base_n: float = 0.0  # decayed counts of normal bins (the baseline is base_k / base_n)
    base_k: float = 0.0
    seen: int = 0  # messages seen (for the warm-up)
    ew_n: float = 0.0  # EWMA window: decayed counts and the variance weight sum of squared decays
    ew_k: float = 0.0
    ew_v: float = 0.0
    cusums: list[float] = field(default_factory=list)  # one per designed shift

    @property
    def baseline(self) -> float:
        """The usual negative rate (the prior until data arrives)."""
        return self.base_k / self.base_n if self.base_n > 0 else self.config.prior_rate

    def update(self, n: int, negative: int) -> BinResult:
        """Judge one bin (empty bins included: they age the windows) and learn from it if it was normal."""
        c = self.config
        if n < 0 or negative < 0 or negative > n:
            raise ValueError(f"bad bin counts n={n} negative={negative}")
        lam = _decay(c.ewma_halflife_bins)
        self.ew_n, self.ew_k, self.ew_v = lam * self.ew_n + n, lam * self.ew_k + negative, lam * lam * self.ew_v + n
        if self.ew_n < 1e-6:  # an empty window (long quiet hours would underflow)
            self.ew_n = self.ew_k = self.ew_v = 0.0
        p0 = min(max(self.baseline, 0.01), 0.9)
        z = (self.ew_k - p0 * self.ew_n) / math.sqrt(p0 * (1 - p0) * self.ew_v) if self.ew_v > 0 else 0.0
        floor_met = self.ew_n >= c.min_volume
        reasons: list[str] = []
        if floor_met and self.ew_k >= c.ceiling * self.ew_n:
            reasons.append("ceiling")
        warm = self.seen >= c.warmup_messages
        if len(self.cusums) != len(c.shifts):
            self.cusums = [0.0] * len(c.shifts)
        if warm:
            for i, shift in enumerate(c.shifts):
                p1 = min(p0 * (1 + shift), 0.95)
                llr = negative * math.log(p1 / p0) + (n - negative) * math.log((1 - p1) / (1 - p0))
                self.cusums[i] = min(max(0.0, self.cusums[i] + llr), c.cusum_cap * c.cusum_h)
            if max(self.cusums) > c.cusum_h:
                reasons.append("cusum")
            if floor_met and z > c.ewma_sigmas:
                reasons.append("ewma")
        self.seen += n
        weight = c.anomaly_weight if reasons else 1.0
        keep = _decay(c.baseline_halflife_bins) if n or self.base_n > 1 else 1.0  # a silent topic keeps its rate
        self.base_n, self.base_k = keep * self.base_n + weight * n, keep * self.base_k + weight * negative
        return BinResult(n, negative, self.ew_n, self.ew_k, p0, z, self.cusum, tuple(reasons))

    @property
    def cusum(self) -> float:
        """The largest CUSUM statistic (0 before any bin)."""
        return max(self.cusums, default=0.0)

    def state(self) -> dict[str, Any]:
        """The detector's state, for checkpointing."""
        return {"base_n": self.base_n, "base_k": self.base_k, "seen": self.seen, "ew_n": self.ew_n,
                "ew_k": self.ew_k, "ew_v": self.ew_v, "cusums": list(self.cusums)}  # fmt: skip

    @classmethod
    def restore(cls, state: dict[str, Any], config: DetectorConfig | None = None) -> TopicDetector:
        """A detector from :meth:`state` (after a restart); a state of an older format starts afresh."""
        if "cusums" not in state:
            return cls(config=config or DetectorConfig())
        return cls(config=config or DetectorConfig(), base_n=float(state["base_n"]), base_k=float(state["base_k"]),
                   seen=int(state["seen"]), ew_n=float(state["ew_n"]), ew_k=float(state["ew_k"]),
                   ew_v=float(state["ew_v"]), cusums=[float(x) for x in state["cusums"]])  # fmt: skip
