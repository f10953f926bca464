"""Out-of-scope detection: a confidence threshold tuned on held-out in-scope and out-of-scope text."""

from __future__ import annotations

from pathlib import Path

import torch

from nlu.errors import DataError


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
