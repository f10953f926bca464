"""Evaluate any scorer on next-item targets under three protocols, in one pass.

- ``full``: the target ranked against every item, items already in the history excluded
  (the protocol of SASRec+ / gSASRec, "filter seen").
- ``full_unfiltered``: the same, history items left in the ranking.
- ``sampled100``: the target against 100 uniformly sampled items the user never touched
  (the original SASRec paper's protocol; optimistic, never reported alone).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from recommender.metrics import RankingTotals, mask_seen, sample_negatives, sampled_ranks, target_ranks


class Scorer(Protocol):
    """Anything that scores every item for a batch of histories."""

    def score(self, histories: list[list[int]]) -> np.ndarray:
        """Scores [B, n_items + 1] (column 0 is padding)."""
        ...


def evaluate(
    scorer: Scorer,
    histories: list[list[int]],
    targets: list[int],
    n_items: int,
    *,
    k: int = 10,
    batch_size: int = 256,
    sampled: int = 100,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """HR@k and NDCG@k per protocol (see the module docstring)."""
    rng = np.random.default_rng(seed)
    totals = {name: RankingTotals(k) for name in ("full", "full_unfiltered", "sampled100")}
    starts = range(0, len(targets), batch_size)
    for start in tqdm(starts, desc="evaluate", disable=not progress, leave=False):
        hist = histories[start : start + batch_size]
        tgt = np.asarray(targets[start : start + batch_size])
        scores = scorer.score(hist).astype(np.float64)
        scores[:, 0] = -np.inf
        totals["full_unfiltered"].add(target_ranks(scores, tgt))
        totals["full"].add(target_ranks(mask_seen(scores, hist, tgt), tgt))
        if sampled:
            negatives = sample_negatives(hist, tgt, n_items, sampled, rng)
            totals["sampled100"].add(sampled_ranks(scores, tgt, negatives))
    return {name: t.result() for name, t in totals.items() if t.users}
