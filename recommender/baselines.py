"""Non-neural scorers: popularity and item-to-item similarity (item-KNN)."""

from __future__ import annotations

import numpy as np
from scipy import sparse


class Popularity:
    """Scores items by how many histories contain them (the last-resort fallback)."""

    def __init__(self, sequences: list[list[int]], n_items: int) -> None:
        counts = np.zeros(n_items + 1, dtype=np.float64)
        for seq in sequences:
            np.add.at(counts, np.unique(seq), 1.0)
        self.counts = counts

    def score(self, histories: list[list[int]]) -> np.ndarray:
        """The same popularity scores for every history: [B, n_items + 1]."""
        return np.tile(self.counts, (len(histories), 1))


class ItemKNN:
    """Cosine item-item similarity from co-occurrence in histories, top ``neighbours`` kept per item.

    A history is scored by the similarity of each item to its recent items, newer items weighted
    more (``decay`` per step back, the last ``window`` items).
    """

    def __init__(
        self, sequences: list[list[int]], n_items: int, *, neighbours: int = 100, window: int = 50, decay: float = 0.9
    ) -> None:
        rows = np.concatenate([np.full(len(set(s)), u) for u, s in enumerate(sequences)])
        cols = np.concatenate([np.fromiter(set(s), dtype=np.int64) for s in sequences])
        users = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sequences), n_items + 1))
        co = (users.T @ users).tocsr()  # [n+1, n+1] co-occurrence counts
        inv = 1.0 / (np.sqrt(co.diagonal()) + 1e-9)
        sim = sparse.diags(inv) @ co @ sparse.diags(inv)
        sim.setdiag(0.0)
        self.sim = _top_per_row(sim.tocsr(), neighbours).astype(np.float32)
        self.window, self.decay = window, decay

    def score(self, histories: list[list[int]]) -> np.ndarray:
        """Recency-weighted similarity to each history's recent items: [B, n_items + 1]."""
        size = self.sim.shape[0]
        weights = np.stack([recency_weights(h, size, self.window, self.decay) for h in histories])
        return np.asarray(self.sim.T @ weights.T).T


def recency_weights(history: list[int], size: int, window: int = 50, decay: float = 0.9) -> np.ndarray:
    """Weight of each item in a history's newest ``window`` items, ``decay`` per step back: [size]."""
    weights = np.zeros(size, dtype=np.float32)
    for age, item in enumerate(reversed(history[-window:])):
        weights[item] += decay**age
    return weights


def _top_per_row(matrix: sparse.csr_matrix, keep: int) -> sparse.csr_matrix:
    """Only the ``keep`` largest entries of each row."""
    rows, cols, vals = [], [], []
    for r in range(matrix.shape[0]):
        lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
        v, c = matrix.data[lo:hi], matrix.indices[lo:hi]
        if len(v) > keep:
            top = np.argpartition(v, -keep)[-keep:]
            v, c = v[top], c[top]
        rows.append(np.full(len(v), r))
        cols.append(c)
        vals.append(v)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=matrix.shape)
