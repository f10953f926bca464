"""Hybrid FAQ search: BM25 (bm25s) and dense vectors (faiss), fused by reciprocal rank fusion.

An entry has several vectors (its question and each alternative phrasing); its
dense score is the best cosine among them. Small knowledge bases use an exact inner-product
index; above ``ann_min_vectors`` vectors an HNSW graph keeps search time flat.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import bm25s
import faiss
import numpy as np
import Stemmer

log = logging.getLogger(__name__)
Method = Literal["bm25", "dense", "hybrid"]
RRF_K = 60  # the constant of Cormack et al. (2009)
DENSE_WEIGHT = 0.9  # dense share in weighted RRF, tuned on the store's validation data (docs/BENCHMARKS.md)
MAX_QUERY_CHARS = 1000


class Encoder(Protocol):
    """What the index needs from an embedder."""

    dim: int

    def encode(self, texts: list[str], *, batch_size: int = ..., progress: bool = ...) -> np.ndarray:
        """Texts → [N, D] unit vectors."""
        ...


@dataclass(frozen=True)
class Doc:
    """An FAQ entry as the index sees it."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()

    def lexical_text(self) -> str:
        """Everything BM25 matches against."""
        return " ".join([self.question, *self.alternatives, self.answer])


def clean_query(query: str) -> str:
    """Whitespace collapsed, cut to ``MAX_QUERY_CHARS`` (very long messages are searched by their start)."""
    return " ".join(query.split())[:MAX_QUERY_CHARS]


class _HasText(Protocol):
    @property
    def question(self) -> str: ...
    @property
    def answer(self) -> str: ...
    @property
    def alternatives(self) -> tuple[str, ...]: ...


def vector_texts(entry: _HasText) -> list[tuple[str, str]]:
    """(kind, text) pairs embedded for one entry: its question and each alternative phrasing.

    The answer is matched by BM25 only: a question-plus-answer vector was worth +0.5 NDCG
    points on StackFAQ and nothing on the store's data, for 5x the indexing time
    (docs/BENCHMARKS.md).
    """
    return [("question", entry.question), *(("alternative", a) for a in entry.alternatives)]


@dataclass
class Hit:
    """One search result: the entry, its fused score and the per-method evidence."""

    doc: Doc
    score: float
    cosine: float = 0.0  # best cosine between the query and the entry's vectors
    bm25: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)


class HybridIndex:
    """In-memory search structure over a knowledge base; rebuilt from stored vectors in seconds."""

    def __init__(
        self,
        docs: Sequence[Doc],
        owners: np.ndarray,
        vectors: np.ndarray,
        encoder: Encoder,
        *,
        ann_min_vectors: int = 20_000,
        dense_weight: float = DENSE_WEIGHT,
    ) -> None:
        """``vectors`` [V, D] unit vectors; ``owners`` [V] the index in ``docs`` each vector belongs to.

        ``dense_weight`` weighs the dense ranking against BM25 in the fusion (0.5 = plain RRF).
        """
        self.weights = {"dense": dense_weight, "bm25": 1.0 - dense_weight}
        self.docs = list(docs)
        self.owners = owners.astype(np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.encoder = encoder
        self.stemmer = Stemmer.Stemmer("english")
        self.bm25 = bm25s.BM25()
        if self.docs:
            tokens = bm25s.tokenize(
                [d.lexical_text() for d in self.docs], stopwords="en", stemmer=self.stemmer, show_progress=False
            )
            self.bm25.index(tokens, show_progress=False)
        self.dense = self._dense_index(self.vectors, ann_min_vectors)

    @staticmethod
    def _dense_index(vectors: np.ndarray, ann_min_vectors: int) -> faiss.Index:
        dim = vectors.shape[1]
        index: faiss.Index
        if len(vectors) >= ann_min_vectors:
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 128
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(vectors)
        return index

    def __len__(self) -> int:
        return len(self.docs)

    def _dense_scores(self, query_vec: np.ndarray, depth: int) -> dict[int, float]:
        """Best cosine per entry among the ``depth`` nearest vectors."""
        sims, ids = self.dense.search(query_vec[None, :], min(depth, len(self.vectors)))
        best: dict[int, float] = {}
        for sim, vid in zip(sims[0], ids[0], strict=True):
            if vid < 0:
                continue
            owner = int(self.owners[vid])
            best[owner] = max(best.get(owner, -1.0), float(sim))
        return best

    def _bm25_scores(self, query: str, depth: int) -> dict[int, float]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, show_progress=False, return_ids=False)
        if not tokens[0]:
            return {}
        scores = self.bm25.get_scores(tokens[0])
        top = np.argsort(-scores)[:depth]
        return {int(i): float(scores[i]) for i in top if scores[i] > 0}

    def cosine(self, query_vec: np.ndarray, doc_index: int) -> float:
        """Exact best cosine between a query vector and one entry's vectors."""
        rows = self.vectors[self.owners == doc_index]
        return float((rows @ query_vec).max()) if len(rows) else 0.0

    def best_with_intent(self, query: str, intent: str) -> Hit | None:
        """The entry listing ``intent`` whose vectors are closest to ``query`` (None if no entry lists it)."""
        candidates = [i for i, d in enumerate(self.docs) if intent in d.intents]
        query = clean_query(query)
        if not candidates or not query:
            return None
        qv = self.encoder.encode([query])[0]
        scored = [(self.cosine(qv, i), i) for i in candidates]
        cosine, best = max(scored)
        return Hit(doc=self.docs[best], score=cosine, cosine=cosine)

    def search(self, query: str, k: int = 5, method: Method = "hybrid", depth: int = 100) -> list[Hit]:
        """Top ``k`` entries for ``query`` (empty list for an empty query or an empty index)."""
        query = clean_query(query)
        if not query or not self.docs:
            return []
        qv = self.encoder.encode([query])[0]
        dense = self._dense_scores(qv, depth * 4) if method != "bm25" else {}
        lexical = self._bm25_scores(query, depth) if method != "dense" else {}
        ranks = {
            name: {d: r for r, d in enumerate(sorted(scores, key=lambda d: -scores[d]), start=1)}
            for name, scores in (("dense", dense), ("bm25", lexical))
            if scores
        }
        fused: dict[int, float] = {}
        for name, by_doc in ranks.items():
            weight = self.weights[name] if len(ranks) > 1 else 1.0
            for d, r in by_doc.items():
                fused[d] = fused.get(d, 0.0) + weight / (RRF_K + r)
        top = sorted(fused, key=lambda d: (-fused[d], d))[:k]
        return [
            Hit(
                doc=self.docs[d],
                score=fused[d],
                cosine=dense[d] if d in dense else self.cosine(qv, d),
                bm25=lexical.get(d, 0.0),
                ranks={name: by_doc[d] for name, by_doc in ranks.items() if d in by_doc},
            )
            for d in top
        ]


def build_index(docs: Sequence[Doc], encoder: Encoder, *, progress: bool = False, **kwargs: Any) -> HybridIndex:
    """Embed every entry's texts and index them (in memory; the bot loads stored vectors instead)."""
    owners, texts = [], []
    for i, doc in enumerate(docs):
        for _, text in vector_texts(doc):
            owners.append(i)
            texts.append(text)
    vectors = encoder.encode(texts, progress=progress)
    return HybridIndex(docs, np.array(owners, dtype=np.int64), vectors, encoder, **kwargs)
