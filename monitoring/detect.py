"""Spike detection on the negative-message rate of one topic, bin by bin.

Each topic (an intent category, a product, a channel) has its own :class:`TopicDetector`. The
stream is cut into fixed time bins; a bin with ``n`` messages of which ``k`` are negative is
compared with the topic's learned baseline rate ``p0`` through the binomial z-score
``z = (k - n·p0) / sqrt(n·p0·(1 - p0))``, so a bin of 400 messages counts as more evidence than a
bin of 12. Three tests, any of which makes the bin *anomalous*:

- **EWMA** of z (weight ``ewma_alpha``) above ``ewma_sigmas`` times its stationary standard
  deviation ``sqrt(α / (2 - α))``: a moderate rise that lasts;
- **CUSUM** ``S = max(0, S + z - k)`` above ``h``: a small rise that accumulates;
- a hard **ceiling** on the raw rate: the baseline does not matter when most messages are angry.

Bins below the ``min_volume`` floor carry no evidence (they neither fire nor teach the
baseline). The first ``warmup_bins`` bins set the baseline (their pooled rate; only the ceiling can fire
meanwhile); after that it is an EWMA of the rate over normal bins, so an incident does not teach
the detector that anger is normal (anomalous bins count 25 times less: a change that lasts for
days does become the new normal). Turning anomalous bins into alerts (pending, firing, resolved)
is the job of the alert rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DetectorConfig:
    """Tunables of the detectors (defaults tuned by ``benchmarks/monitoring.py``)."""

    bin_seconds: int = 300  # width of a time bin
    min_volume: int = 10  # bins with fewer messages carry no evidence
    baseline_alpha: float = 0.05  # weight of each normal bin in the learned baseline rate
    anomaly_alpha: float = 0.002  # ...and of an anomalous one: a lasting change slowly becomes the new normal
    prior_rate: float = 0.25  # baseline before any data
    warmup_bins: int = 6  # bins (above the floor) averaged into the first baseline; only the ceiling fires before
    ewma_alpha: float = 0.3  # weight of each bin in the EWMA of z
    ewma_sigmas: float = 3.0  # EWMA control limit, in its own standard deviations
    cusum_k: float = 0.5  # CUSUM allowance (z units)
    cusum_h: float = 5.0  # CUSUM decision threshold (z units); the sum restarts from 0 after each signal
    ceiling: float = 0.8  # a negative rate above this is anomalous whatever the baseline


@dataclass(frozen=True)
class BinResult:
    """What one bin showed: counts, the baseline it was judged against, and which tests fired."""

    n: int
    negative: int
    rate: float
    baseline: float
    z: float
    ewma: float
    cusum: float
    reasons: tuple[str, ...]

    @property
    def anomalous(self) -> bool:
        """Whether any test fired."""
        return bool(self.reasons)


@dataclass
class TopicDetector:
    """EWMA + CUSUM + ceiling state of one topic."""

    config: DetectorConfig = field(default_factory=DetectorConfig)
    baseline: float = -1.0
    normal_bins: int = 0
    ewma: float = 0.0
    cusum: float = 0.0
    warm_n: int = 0
    warm_negative: int = 0

    def __post_init__(self) -> None:
        """Start from the prior rate."""
        if self.baseline < 0:
            self.baseline = self.config.prior_rate

    def update(self, n: int, negative: int) -> BinResult:
        """Judge one bin and learn from it if it was normal."""
        c = self.config
        if n < 0 or negative < 0 or negative > n:
            raise ValueError(f"bad bin counts n={n} negative={negative}")
        if n < c.min_volume:  # too few messages: no evidence either way, the state is kept
            rate = negative / n if n else 0.0
            return BinResult(n, negative, rate, self.baseline, 0.0, self.ewma, self.cusum, ())
        rate = negative / n
        p0 = min(max(self.baseline, 0.01), 0.99)
        z = (negative - n * p0) / math.sqrt(n * p0 * (1 - p0))
        ceiling = ("ceiling",) if rate >= c.ceiling else ()
        if self.normal_bins < c.warmup_bins:  # learning: the volume-weighted mean of the first bins
            if not ceiling:
                self.warm_n, self.warm_negative = self.warm_n + n, self.warm_negative + negative
                self.baseline = self.warm_negative / self.warm_n
                self.normal_bins += 1
            return BinResult(n, negative, rate, p0, z, self.ewma, self.cusum, ceiling)
        self.ewma = c.ewma_alpha * z + (1 - c.ewma_alpha) * self.ewma
        self.cusum = max(0.0, self.cusum + z - c.cusum_k)
        reasons = list(ceiling)
        if self.ewma > c.ewma_sigmas * math.sqrt(c.ewma_alpha / (2 - c.ewma_alpha)):
            reasons.append("ewma")
        if self.cusum > c.cusum_h:  # accumulated evidence: signal, and start over (restart after signal)
            self.cusum = 0.0
            if z > 0:  # ... counted only while this bin is still above the baseline
                reasons.append("cusum")
        alpha = c.anomaly_alpha if reasons else c.baseline_alpha
        self.baseline = alpha * rate + (1 - alpha) * self.baseline
        self.normal_bins += 0 if reasons else 1
        return BinResult(n, negative, rate, p0, z, self.ewma, self.cusum, tuple(reasons))

    def state(self) -> dict[str, float]:
        """The detector's state, for checkpointing."""
        return {"baseline": self.baseline, "normal_bins": self.normal_bins, "ewma": self.ewma, "cusum": self.cusum,
                "warm_n": self.warm_n, "warm_negative": self.warm_negative}  # fmt: skip

    @classmethod
    def restore(cls, state: dict[str, float], config: DetectorConfig | None = None) -> TopicDetector:
        """A detector from :meth:`state` (after a restart)."""
        return cls(config=config or DetectorConfig(), baseline=float(state["baseline"]),
                   normal_bins=int(state["normal_bins"]), ewma=float(state["ewma"]), cusum=float(state["cusum"]),
                   warm_n=int(state["warm_n"]), warm_negative=int(state["warm_negative"]))  # fmt: skip
