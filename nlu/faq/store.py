"""The knowledge base in the database: incremental import, cached vectors, index loading, feedback."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from core.models import FaqEntry, FaqFeedback, FaqVector, utcnow
from nlu.errors import EmptyKnowledgeBaseError
from nlu.faq.embedder import Embedder
from nlu.faq.index import Doc, Encoder, HybridIndex, vector_texts
from nlu.faq.kb import FaqSpec

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import changed."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded: int = 0  # vectors computed (the rest were reused)

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed; "
            f"{self.embedded} vectors computed"
        )


def _row(spec: FaqSpec) -> dict[str, object]:
    return {
        "question": spec.question,
        "answer": spec.answer,
        "alternatives": json.dumps(list(spec.alternatives)),
        "tags": json.dumps(list(spec.tags)),
        "links": json.dumps(list(spec.links)),
        "intents": json.dumps(list(spec.intents)),
        "content_hash": spec.content_hash(),
    }


def _stale_ids(session: Session, embedder_name: str) -> set[str]:
    """Entries without vectors of the current embedder (a new model re-indexes them)."""
    have = set(session.exec(select(FaqVector.entry_id).where(FaqVector.model == embedder_name)).all())
    return set(session.exec(select(FaqEntry.id)).all()) - have


def import_kb(
    session: Session, specs: Sequence[FaqSpec], embedder: Embedder, *, prune: bool = True, progress: bool = True
) -> ImportReport:
    """Bring the database in line with ``specs``; embeds only new, changed or stale entries.

    Embeddings are computed before anything is written, and the caller's session commits
    once, so a failure leaves the previous knowledge base intact.
    """
    report = ImportReport()
    existing = {e.id: e for e in session.exec(select(FaqEntry)).all()}
    stale = _stale_ids(session, embedder.name)
    todo: list[FaqSpec] = []
    for spec in specs:
        old = existing.get(spec.id)
        if old is None:
            report.added += 1
        elif old.content_hash != spec.content_hash():
            report.updated += 1
        else:
            report.unchanged += 1
            if spec.id not in stale:
                continue  # same content, vectors of this embedder already stored
        todo.append(spec)
    pairs = [(spec.id, kind, text) for spec in todo for kind, text in vector_texts(spec)]
    vectors = embedder.encode([t for _, _, t in pairs], progress=progress and len(pairs) > 256)
    report.embedded = len(pairs)
    wanted = {s.id for s in specs}
    removed = [i for i in existing if i not in wanted] if prune else []
    report.removed = len(removed)
    changed = [s.id for s in todo] + removed
    if changed:
        session.exec(delete(FaqVector).where(col(FaqVector.entry_id).in_(changed)))  # type: ignore[call-overload]
    if removed:
        session.exec(delete(FaqEntry).where(col(FaqEntry.id).in_(removed)))  # type: ignore[call-overload]
    for spec in todo:
        entry = existing.get(spec.id) or FaqEntry(id=spec.id, question="", answer="", content_hash="")
        for key, value in _row(spec).items():
            setattr(entry, key, value)
        entry.updated_at = utcnow()
        session.add(entry)
    session.flush()
    for (entry_id, kind, _), vec in zip(pairs, vectors, strict=True):
        session.add(FaqVector(entry_id=entry_id, model=embedder.name, kind=kind, vector=vec.tobytes()))
    log.info("knowledge base import: %s", report)
    return report


def _doc(e: FaqEntry) -> Doc:
    return Doc(
        id=e.id,
        question=e.question,
        answer=e.answer,
        alternatives=tuple(json.loads(e.alternatives)),
        links=tuple(json.loads(e.links)),
        tags=tuple(json.loads(e.tags)),
        intents=tuple(json.loads(e.intents)),
    )


def signature(session: Session) -> tuple[int, str]:
    """Changes whenever the knowledge base changes (entry count and last update)."""
    count, last = session.exec(select(func.count(), func.max(FaqEntry.updated_at))).one()
    return int(count), str(last)


def load_index(session: Session, embedder: Encoder, name: str, **kwargs: int) -> HybridIndex:
    """Build the search index from stored entries and vectors of embedder ``name``."""
    entries = session.exec(select(FaqEntry).order_by(FaqEntry.id)).all()
    if not entries:
        raise EmptyKnowledgeBaseError("the FAQ knowledge base is empty: run `python -m nlu.faq import <file>`")
    position = {e.id: i for i, e in enumerate(entries)}
    rows = session.exec(select(FaqVector.entry_id, FaqVector.vector).where(FaqVector.model == name)).all()
    owners = np.array([position[r[0]] for r in rows], dtype=np.int64)
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, embedder.dim))
    if missing := len(entries) - len(set(owners.tolist())):
        log.warning("%d FAQ entries have no vectors for %s: re-run the import", missing, name)
    return HybridIndex([_doc(e) for e in entries], owners, vectors, embedder, **kwargs)


def record_feedback(session: Session, *, sender_id: str, entry_id: str, helpful: bool, query: str) -> None:
    """Store a helpful / not-helpful vote."""
    session.add(FaqFeedback(sender_id=sender_id, entry_id=entry_id, helpful=helpful, query=query[:4000]))
