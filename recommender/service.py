"""The hybrid recommender the bot calls: behaviour model, item-KNN, content, popularity, rules.

Which source ranks the products:

1. "more like this" on a product → content similarity to it, blended with its item-KNN neighbours;
2. a customer with history the model knows → the sequence model (SASRec), reason from the
   history item most related to each product;
3. history of products the model does not know yet (new products) → content similarity;
4. nobody knows anything → popularity (from the trained bundle, or counted live).

Then the rules (in stock, not bought, not dismissed, not seen, the customer's category and price
limits), and one slot for a new product that is close to the customer's taste. The trained
bundle and the catalog are reloaded when they change, without a restart.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from core.models import BehaviourEvent, Product
from recommender.artifacts import Bundle, current_version, load_bundle
from recommender.baselines import recency_weights
from recommender.content import ContentIndex, TextEncoder
from recommender.errors import ModelNotFoundError
from recommender.events import Activity, customer_activity
from recommender.intent import STOP_KINDS, current_session_features, load_events
from recommender.rules import Constraints, allowed
from recommender.sequences import left_pad

log = logging.getLogger(__name__)
# a product nobody touched yet gets a slot when this close to the customer's taste
NEW_ITEM_MIN_SIMILARITY = 0.5
# a reason, or how to write it (only the cards shown need one)
Why = str | Callable[[], str]
# product, score, source, reason
Ranked = tuple[str, float, str, Why]


@dataclass
class Recommendation:
    """One product card: what to show and why."""

    product_id: str
    name: str
    price: float
    url: str
    category: str
    score: float
    source: str  # sequence | itemknn | content | popularity
    reason: str


class RecommenderService:
    """Recommendations for a customer; thread-safe; picks up retrained models and catalog changes."""

    def __init__(
        self,
        *,
        engine: Engine,
        model_root: Path,
        encoder_factory: Callable[[], TextEncoder] | None = None,
        reload_seconds: float = 30.0,
    ) -> None:
        self.engine, self.model_root, self.reload_seconds = engine, model_root, reload_seconds
        self._encoder_factory = encoder_factory
        self._content: ContentIndex | None = None
        self._bundle: Bundle | None = None
        self._catalog: dict[str, Product] = {}
        self._new_products: set[str] = set()  # in the catalog, unknown to the trained model
        self._new_mask = np.zeros(0, dtype=bool)  # the same as a row mask of the content index
        self._checked = 0.0
        self._lock = threading.Lock()

    # -- state -----------------------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Reload the bundle if ``current`` changed and the catalog, at most every ``reload_seconds``."""
        with self._lock:
            if not force and time.monotonic() - self._checked < self.reload_seconds:
                return
            self._checked = time.monotonic()
            version = current_version(self.model_root)
            if version and (self._bundle is None or self._bundle.version != version):
                try:
                    self._bundle = load_bundle(self.model_root, version)
                    log.info("recommender model %s loaded", version)
                except (ModelNotFoundError, OSError, ValueError) as exc:
                    log.warning("recommender model %s not loaded (%s); keeping the previous one", version, exc)
            with Session(self.engine) as s:
                products = list(s.exec(select(Product)))
            self._catalog = {p.id: p for p in products}
            known = self._bundle.vocab.index if self._bundle else {}
            self._new_products = {p for p in self._catalog if p not in known}
            if self._encoder_factory is not None:
                self._content = self._content or ContentIndex(self._encoder_factory())
                if embedded := self._content.refresh(products):
                    log.info("embedded %d new or changed products", embedded)
                self._new_mask = self._content.mask(self._new_products)

    def departments(self) -> list[str]:
        """Top-level categories of the catalog ("Camping" of "Camping | tent"), longest first."""
        self.refresh()
        names = {p.category.split("|")[0].strip() for p in self._catalog.values() if p.category}
        return sorted((n for n in names if n), key=lambda n: (-len(n), n))

    def product(self, product_id: str) -> Product | None:
        """A catalog product, if it exists."""
        self.refresh()
        return self._catalog.get(product_id)

    def purchase_intent(self, customer_id: str, now: datetime | None = None) -> tuple[float, float, str] | None:
        """(P(purchase), offer threshold, last viewed product) for the customer's session in progress.

        None when there is no intent model yet or no session in progress (no event in 30 minutes).
        """
        self.refresh()
        model = self._bundle.intent if self._bundle else None
        if model is None:
            return None
        with Session(self.engine) as s:
            events = load_events(s, customer_id)
        feats = current_session_features(events[-500:], now or datetime.now(UTC))
        viewed = [e.product for e in events if e.kind not in STOP_KINDS]
        if feats is None or not viewed:
            return None
        return model.probability(feats), model.threshold, viewed[-1]

    @property
    def version(self) -> str | None:
        """The model version in use (None before the first training)."""
        return self._bundle.version if self._bundle else None

    # -- scoring ---------------------------------------------------------------------------
    def recommend(self, customer_id: str, k: int = 3, constraints: Constraints | None = None) -> list[Recommendation]:
        """Up to ``k`` products for this customer, best first, each with a reason."""
        self.refresh()
        c = constraints or Constraints()
        with Session(self.engine) as s:
            act = customer_activity(s, customer_id)
            popular = None if self._bundle else self._live_popularity(s)
        blocked = set(act.history) | act.purchased | act.dismissed
        if c.like:
            blocked.add(c.like)
        ranked = self._ranked(act, c, popular)
        picks = [(p, sc, src, why) for p, sc, src, why in ranked if p in self._catalog and
                 allowed(self._catalog[p], c, blocked)][:k]  # fmt: skip
        picks = self._with_new_product(picks, act, c, blocked, k)
        return [self._card(p, sc, src, why) for p, sc, src, why in picks]

    def _ranked(self, act: Activity, c: Constraints, popular: dict[str, float] | None) -> list[Ranked]:
        known = self._bundle.vocab.encode(act.history) if self._bundle else []
        if c.like and c.like in self._catalog:
            return self._more_like(c.like)
        if known and self._bundle and self._bundle.net is not None:
            return self._by_sequence(act.history, known)
        if known and self._bundle:
            return self._by_knn(known)
        if act.history and self._content is not None:
            similar = self._content.similarity(act.history[-10:])
            return [(p, s, "content", partial(self._similar_reason, p, act.history[-10:])) for p, s in similar]
        return self._by_popularity(popular, c)

    def _by_sequence(self, history: list[str], known: list[int]) -> list[Ranked]:
        assert self._bundle is not None and self._bundle.net is not None
        net = self._bundle.net
        items = torch.from_numpy(left_pad([known], min(len(known), net.cfg.max_len)))
        with torch.inference_mode():
            scores = net.predict(items)[0].numpy()
        top = np.argpartition(-scores[1:], min(200, len(scores) - 2))[:200] + 1
        top = top[np.argsort(-scores[top])]
        recent = known[-10:]
        out: list[Ranked] = []
        for item in top:
            why = partial(self._sequence_reason, int(item), recent)  # computed only for the cards shown
            out.append((self._bundle.vocab.decode(int(item)), float(scores[item]), "sequence", why))
        return out

    def _by_knn(self, known: list[int]) -> list[Ranked]:
        assert self._bundle is not None
        scores = self._bundle.knn.T @ recency_weights(known, self._bundle.knn.shape[0])
        top = np.argsort(-scores)[:200]
        return [
            (self._bundle.vocab.decode(int(i)), float(scores[i]), "itemknn", partial(self._knn_reason, int(i), known))
            for i in top if i > 0 and scores[i] > 0
        ]  # fmt: skip

    def _more_like(self, product: str) -> list[Ranked]:
        name = self._catalog[product].name
        sims = dict(self._content.similarity([product])) if self._content else {}
        if self._bundle and product in self._bundle.vocab.index:
            row = self._bundle.knn[self._bundle.vocab.index[product]]
            top = row.max() or 1.0
            for i, v in zip(row.indices, row.data, strict=True):
                pid = self._bundle.vocab.decode(int(i))
                sims[pid] = 0.5 * sims.get(pid, 0.0) + 0.5 * float(v) / top
        return [(p, s, "content", f"Similar to {name}") for p, s in _top(sims)]

    def _by_popularity(self, popular: dict[str, float] | None, c: Constraints) -> list[Ranked]:
        if popular is None:
            assert self._bundle is not None
            pops = self._bundle.popularity
            popular = {self._bundle.vocab.decode(int(i)): float(pops[i]) for i in np.nonzero(pops)[0] if i > 0}
        why = f"Popular in {c.category}" if c.category else "Popular with our customers"
        return [(p, s, "popularity", why) for p, s in _top(popular)]

    def _with_new_product(
        self, picks: list[Ranked], act: Activity, c: Constraints, blocked: set[str], k: int
    ) -> list[Ranked]:
        """Give the last slot to a product the model cannot know yet, if it is close to the customer's taste."""
        if self._content is None or not act.history or not self._bundle or not self._new_products:
            return picks
        new = [(p, s) for p, s in self._content.similarity(act.history[-10:], among=self._new_mask, top=20)
               if s >= NEW_ITEM_MIN_SIMILARITY]  # fmt: skip
        chosen = {p for p, *_ in picks}
        for p, s in new:
            if p in self._catalog and p not in chosen and allowed(self._catalog[p], c, blocked):
                why = "New in the store: " + self._similar_reason(p, act.history[-10:]).lower()
                slot: Ranked = (p, s, "content", why)
                return [*picks[: k - 1], slot]
        return picks

    # -- reasons and helpers ---------------------------------------------------------------
    def _knn_anchor(self, item: int, recent: list[int]) -> str | None:
        """The recent item most similar to ``item`` by item-KNN, as a product name."""
        assert self._bundle is not None
        sims = self._bundle.knn[recent][:, [item]].toarray().ravel()
        if not len(sims) or sims.max() <= 0:
            return None
        return self._name(self._bundle.vocab.decode(recent[int(np.argmax(sims))]))

    def _sequence_reason(self, item: int, recent: list[int]) -> str:
        anchor = self._knn_anchor(item, recent)
        return f"Goes with {anchor} you looked at" if anchor else "Picked for you from your recent activity"

    def _knn_reason(self, item: int, known: list[int]) -> str:
        return f"Customers who liked {self._knn_anchor(item, known[-10:]) or 'what you viewed'} also liked this"

    def _similar_reason(self, product: str, anchors: list[str]) -> str:
        anchor = self._content.nearest_anchor(product, anchors) if self._content else None
        return f"Similar to {self._name(anchor)} you looked at" if anchor else "Matches what you looked at"

    def _name(self, product: str | None) -> str:
        return self._catalog[product].name if product in self._catalog else "something"

    def _card(self, product: str, score: float, source: str, reason: Why) -> Recommendation:
        p = self._catalog[product]
        text = reason if isinstance(reason, str) else reason()
        return Recommendation(p.id, p.name, p.price, p.url, p.category, round(score, 4), source, text)

    @staticmethod
    def _live_popularity(session: Session) -> dict[str, float]:
        stmt = select(BehaviourEvent.product_id, func.count()).group_by(BehaviourEvent.product_id)
        return {p: float(n) for p, n in session.exec(stmt)}


def _top(scores: dict[str, float], n: int = 200) -> list[tuple[str, float]]:
    return heapq.nlargest(n, scores.items(), key=lambda kv: kv[1])
