"""Out-of-scope detection: a confidence threshold (and a ceiling on the out-of-scope class) tuned on held-out text."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from nlu.errors import DataError

log = logging.getLogger(__name__)


def load_oos(path: Path) -> tuple[list[str], list[str]]:
    """Out-of-scope messages (one per line, ``#`` comments): odd lines for tuning, even lines for testing."""
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read out-of-scope examples: {exc}") from exc
    texts = [ln for ln in lines if ln and not ln.startswith("#")]
    return texts[0::2], texts[1::2]


def scores_at(threshold: float, in_conf: torch.Tensor, in_correct: torch.Tensor, oos_conf: torch.Tensor) -> dict:
    """In-scope accuracy (a fallback counts as wrong) and OOS recall at ``threshold``."""
    accepted = in_conf >= threshold
    return {
        "in_scope_accuracy": float((accepted & in_correct).float().mean()) if len(in_conf) else 0.0,
        "oos_recall": float((oos_conf < threshold).float().mean()) if len(oos_conf) else 0.0,
    }


def tune_threshold(
    in_conf: torch.Tensor,
    in_correct: torch.Tensor,
    oos_conf: torch.Tensor,
    max_in_scope_drop: float = 1.0,
    max_oos_accept: float | None = None,
) -> float:
    """The threshold maximising in-scope accuracy + OOS recall (ties: the lower threshold).

    Only thresholds that cost at most ``max_in_scope_drop`` of in-scope accuracy (absolute,
    against no threshold) are considered: a weak model must not buy OOS recall by turning
    most real questions into fallbacks. With ``max_oos_accept``, the lowest such threshold that
    lets at most that share of out-of-scope messages through wins instead, when there is one
    (a confident wrong answer costs a customer more than a "did you mean").

    Args:
        in_conf: [N] calibrated top-intent confidence of in-scope messages.
        in_correct: [N] bool, whether the top intent was right.
        oos_conf: [M] top-intent confidence of out-of-scope messages.
        max_in_scope_drop: largest allowed loss of in-scope accuracy, e.g. 0.02.
        max_oos_accept: largest wanted share of out-of-scope messages above the threshold, e.g. 0.04.
    """
    ceiling = scores_at(0.0, in_conf, in_correct, oos_conf)["in_scope_accuracy"]
    candidates = torch.cat([torch.zeros(1), in_conf, oos_conf]).unique()
    best_t, best = 0.0, -1.0
    for t in candidates.tolist():  # ascending
        s = scores_at(t, in_conf, in_correct, oos_conf)
        if ceiling - s["in_scope_accuracy"] > max_in_scope_drop + 1e-9:
            continue
        if max_oos_accept is not None and len(oos_conf) and 1 - s["oos_recall"] <= max_oos_accept + 1e-9:
            return float(t)
        total = s["in_scope_accuracy"] + s["oos_recall"]
        if total > best + 1e-9:
            best_t, best = t, total
    return float(best_t)


# Ceilings tried for the out-of-scope class's own probability (1.0 = rule off). A customer message
# the model gives a few per cent of out-of-scope mass is, on realistic dev data, far more often out of
# scope than the top-intent confidence alone shows.
OOS_CEILINGS: tuple[float, ...] = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
THRESHOLDS: tuple[float, ...] = tuple(i / 100 for i in range(100))


def accepted(conf: torch.Tensor, oos_p: torch.Tensor, threshold: float, oos_ceiling: float) -> torch.Tensor:
    """Which messages get their top intent: confidence at least ``threshold`` and P(out of scope) below the ceiling."""
    keep = conf >= threshold
    return keep & (oos_p < oos_ceiling) if oos_ceiling < 1.0 else keep


def upper_bound(k: int, n: int, z: float = 1.645) -> float:
    """One-sided upper confidence bound of a rate seen ``k`` times in ``n`` (Wilson score; z 1.645: 95 %)."""
    if n <= 0:
        return 0.0
    p, zz = k / n, z * z
    centre = p + zz / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + zz / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + zz / n))


def tune_fallback(
    in_conf: torch.Tensor,
    in_oos: torch.Tensor,
    in_correct: torch.Tensor,
    oos_conf: torch.Tensor,
    oos_oos: torch.Tensor,
    max_in_scope_drop: float = 1.0,
    max_oos_accept: float | None = None,
) -> tuple[float, float]:
    """A (threshold, out-of-scope ceiling) pair for the served fallback rule (``accepted``).

    Every pair of ``THRESHOLDS`` × ``OOS_CEILINGS`` costing at most ``max_in_scope_drop`` of
    in-scope accuracy (absolute, against no rule) is a candidate. When ``max_oos_accept`` is given
    and some candidates keep the share of out-of-scope messages let through at most that with 95 %
    confidence (the one-sided upper bound ``upper_bound`` of the share seen, not the share itself:
    with about a hundred out-of-scope dev messages the seen share is a noisy estimate, and the most
    accurate rule that just meets it lets more through on new text), the most accurate of them
    wins (ties: fewer through, then the looser rule); otherwise the candidate with the best
    in-scope accuracy + out-of-scope rejection does.

    Args:
        in_conf: [N] top-intent confidence of in-scope messages (0 where a no-intent class won).
        in_oos: [N] probability the model gives its out-of-scope class, in-scope messages.
        in_correct: [N] bool, whether the top intent was right.
        oos_conf: [M] top-intent confidence of out-of-scope messages (0 where a no-intent class won).
        oos_oos: [M] out-of-scope class probability of the out-of-scope messages.
        max_in_scope_drop: largest allowed loss of in-scope accuracy, e.g. 0.05.
        max_oos_accept: largest wanted share of out-of-scope messages given an intent, e.g. 0.05.
    """
    n_in, n_oos = max(len(in_conf), 1), max(len(oos_conf), 1)
    base = float(accepted(in_conf, in_oos, 0.0, 1.0).logical_and(in_correct).sum()) / n_in
    best: tuple[tuple[float, ...], float, float] | None = None
    fallback: tuple[tuple[float, ...], float, float] | None = None
    for c in OOS_CEILINGS:
        for t in THRESHOLDS:
            acc = float(accepted(in_conf, in_oos, t, c).logical_and(in_correct).sum()) / n_in
            if base - acc > max_in_scope_drop + 1e-9:
                continue
            k = int(accepted(oos_conf, oos_oos, t, c).sum()) if len(oos_conf) else 0
            through = k / n_oos
            loose = c - t  # higher: fewer real questions turned away
            if max_oos_accept is not None and upper_bound(k, len(oos_conf)) <= max_oos_accept + 1e-9:
                ranked = (acc, -through, loose)
                if best is None or ranked > best[0]:
                    best = (ranked, t, c)
            summed = (acc + 1 - through, loose)
            if fallback is None or summed > fallback[0]:
                fallback = (summed, t, c)
    if best is None and max_oos_accept is not None and len(oos_conf):
        log.warning(
            "no fallback rule lets at most %.1f %% of out-of-scope messages through (95 %% bound) within a"
            " %.1f-point accuracy budget; using the best accuracy + rejection instead",
            100 * max_oos_accept,
            100 * max_in_scope_drop,
        )
    chosen = best or fallback
    return (chosen[1], chosen[2]) if chosen else (0.0, 1.0)
