"""Ranking metrics for next-item prediction: full ranking and the sampled-negatives protocol."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RankingTotals:
    """Running sums of HR@k and NDCG@k over evaluated users."""

    k: int = 10
    users: int = 0
    hits: float = 0.0
    ndcg: float = 0.0

    def add(self, ranks: np.ndarray) -> None:
        """Add 0-based ranks of the targets."""
        self.users += len(ranks)
        top = ranks < self.k
        self.hits += float(top.sum())
        self.ndcg += float((1.0 / np.log2(ranks[top] + 2.0)).sum())

    def result(self) -> dict[str, float]:
        """HR@k and NDCG@k."""
        n = max(1, self.users)
        return {f"hr@{self.k}": round(self.hits / n, 4), f"ndcg@{self.k}": round(self.ndcg / n, 4)}


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each target among all columns of ``scores`` [B, N] (ties count against it)."""
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    return (scores >= target_scores).sum(axis=1) - 1


def mask_seen(scores: np.ndarray, histories: list[list[int]], targets: np.ndarray) -> np.ndarray:
    """Scores with every item already in the history set to -inf (the target itself is kept)."""
    out = scores.copy()
    for row, (hist, target) in enumerate(zip(histories, targets, strict=True)):
        seen = [i for i in hist if i != target]
        out[row, seen] = -np.inf
    return out


def sample_negatives(
    histories: list[list[int]], targets: np.ndarray, n_items: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` items per user drawn uniformly from the items the user never interacted with: [B, count].

    A user who touched almost every item gets fewer; the rest of the row is 0 (padding, scored -inf).
    """
    out = np.zeros((len(targets), count), dtype=np.int64)
    for row, (hist, target) in enumerate(zip(histories, targets, strict=True)):
        seen = set(hist) | {int(target)}
        wanted = min(count, n_items - sum(1 <= i <= n_items for i in seen))
        picked: list[int] = []
        while len(picked) < wanted:
            for c in rng.integers(1, n_items + 1, size=count * 2):
                if int(c) not in seen:
                    picked.append(int(c))
                    seen.add(int(c))
                    if len(picked) == wanted:
                        break
        out[row, : len(picked)] = picked
    return out


def sampled_ranks(scores: np.ndarray, targets: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """0-based rank of each target among itself and its sampled negatives."""
    rows = np.arange(len(targets))[:, None]
    target_scores = scores[np.arange(len(targets)), targets][:, None]
    return (scores[rows, negatives] >= target_scores).sum(axis=1)
