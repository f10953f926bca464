"""The FAQ service used by the action server: search + decision, hot reload when the KB changes."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from nlu.faq import store
from nlu.faq.embedder import Embedder, load_embedder
from nlu.faq.index import Doc, Hit, HybridIndex
from nlu.faq.policy import Decision, Thresholds, decide

log = logging.getLogger(__name__)


def onnx_dir(var_dir: Path) -> Path:
    """Where the query-encoder ONNX graphs are cached."""
    return var_dir / "models" / "faq-onnx"


def thresholds_path(var_dir: Path) -> Path:
    """Where `python -m nlu.faq tune` writes the tuned thresholds."""
    return var_dir / "faq" / "thresholds.json"


class FaqService:
    """Thread-safe FAQ lookups over the knowledge base in the database."""

    def __init__(
        self, engine: Engine, embedder: Embedder, thresholds: Thresholds, *, reload_seconds: float = 30.0
    ) -> None:
        self.engine = engine
        self.embedder = embedder
        self.thresholds = thresholds
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._index: HybridIndex | None = None
        self._signature: tuple[int, str] | None = None
        self._checked = 0.0

    def index(self) -> HybridIndex:
        """The current index; rebuilt from the database when the KB changed (checked every few seconds).

        Raises `EmptyKnowledgeBaseError` when nothing was imported.
        """
        now = time.monotonic()
        with self._lock:
            if self._index is not None and now - self._checked < self.reload_seconds:
                return self._index
            with Session(self.engine) as session:
                sig = store.signature(session)
                if self._index is None or sig != self._signature:
                    self._index = store.load_index(session, self.embedder, self.embedder.name)
                    self._signature = sig
                    log.info("FAQ index loaded: %d entries", len(self._index))
            self._checked = now
            return self._index

    def ask(self, query: str, k: int = 5) -> Decision:
        """Search and decide (answer / suggest / unsure)."""
        return decide(self.index().search(query, k), self.thresholds)

    def best_for_intent(self, query: str, intent: str) -> Hit | None:
        """Best entry among those written for ``intent`` (None when no entry lists it)."""
        return self.index().best_with_intent(query, intent)

    def entry(self, entry_id: str) -> Doc | None:
        """An entry by id (for "did you mean" buttons)."""
        return next((d for d in self.index().docs if d.id == entry_id), None)


def create_service(engine: Engine, *, var_dir: Path, embedder_path: Path | None, reload_seconds: float) -> FaqService:
    """Factory: load the embedder and the tuned thresholds (defaults when not tuned yet)."""
    thresholds = Thresholds.load(thresholds_path(var_dir))
    log.info("FAQ thresholds: %s", thresholds)
    embedder = load_embedder(embedder_path, onnx_dir=onnx_dir(var_dir))
    return FaqService(engine, embedder, thresholds, reload_seconds=reload_seconds)
