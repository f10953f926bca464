"""Content similarity: sentence-transformer embeddings of product text (name, category, description).

Covers what behaviour cannot: new products nobody has touched yet, and customers whose only
history is such products. Vectors are cached per product and text, so a catalog change embeds
only what changed.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import numpy as np

from core.models import Product


class TextEncoder(Protocol):
    """Anything with the embedder's ``encode`` (L2-normalised rows)."""

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """One normalised vector per text."""
        ...


def product_text(p: Product) -> str:
    """The text a product is embedded from."""
    return f"{p.name}. {p.category}. {p.description}"[:1000]


class ContentIndex:
    """Product id → normalised text embedding."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.ids: list[str] = []
        self.vectors = np.zeros((0, 1), dtype=np.float32)
        self._keys: dict[str, str] = {}
        self._index: dict[str, int] = {}

    def refresh(self, products: list[Product]) -> int:
        """Embed products that are new or whose text changed; returns how many were embedded."""
        keys = {p.id: hashlib.sha1(product_text(p).encode()).hexdigest() for p in products}
        stale = [p for p in products if self._keys.get(p.id) != keys[p.id]]
        if not stale and set(keys) == set(self.ids):
            return 0
        old = dict(zip(self.ids, self.vectors, strict=False)) if len(self.ids) else {}
        fresh = self.encoder.encode([product_text(p) for p in stale]) if stale else np.zeros((0, 1))
        old.update(zip((p.id for p in stale), fresh, strict=True))
        self.ids = [p.id for p in products]
        self.vectors = np.stack([old[i] for i in self.ids]).astype(np.float32)
        self._keys = keys
        self._index = {p: i for i, p in enumerate(self.ids)}
        return len(stale)

    def mask(self, products: set[str]) -> np.ndarray:
        """Boolean row mask of ``products`` (for :meth:`similarity`'s ``among``)."""
        out = np.zeros(len(self.ids), dtype=bool)
        out[[self._index[p] for p in products if p in self._index]] = True
        return out

    def similarity(
        self, anchors: list[str], among: np.ndarray | None = None, top: int = 200
    ) -> list[tuple[str, float]]:
        """The ``top`` products (of the ``among`` mask, default all) most similar to any anchor, best first.

        A product's similarity is its best cosine to any anchor; the anchors themselves are left out.
        """
        rows = [self._index[a] for a in anchors if a in self._index]
        if not rows:
            return []
        allowed = np.ones(len(self.ids), dtype=bool) if among is None else among.copy()
        allowed[rows] = False
        candidates = np.flatnonzero(allowed)
        sims = (self.vectors[candidates] @ self.vectors[rows].T).max(axis=1)  # only the rows asked about
        best = np.argsort(-sims) if len(sims) <= top else np.argpartition(-sims, top)[:top]
        best = best[np.argsort(-sims[best])]
        return [(self.ids[candidates[i]], float(sims[i])) for i in best]

    def nearest_anchor(self, product: str, anchors: list[str]) -> str | None:
        """The anchor most similar to ``product`` (for the reason shown with a card)."""
        rows = [a for a in anchors if a in self._index]
        if product not in self._index or not rows:
            return None
        sims = self.vectors[[self._index[a] for a in rows]] @ self.vectors[self._index[product]]
        return rows[int(np.argmax(sims))]
