"""Validation queries for the FAQ thresholds: the bot's intent utterances and out-of-scope messages.

In-scope: up to ``per_intent`` utterances of each intent that some KB entry lists under
``intents`` (chosen by a hash of the text, so the choice is stable); the top hit is right when
it lists that intent. Out-of-scope: odd lines of the NLU's out-of-scope file tune, even lines
report (the same split the NLU threshold uses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlu.data import load_intent_csv
from nlu.faq.index import HybridIndex
from nlu.faq.policy import Thresholds, tune
from nlu.oos import load_oos


@dataclass
class Validation:
    """Validation texts with the intents that make a hit right."""

    in_scope: list[tuple[str, str]]  # (text, intent)
    oos_tune: list[str]
    oos_test: list[str]


def _stable_rank(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def validation_set(index: HybridIndex, intent_csv: Path, oos_file: Path, per_intent: int = 15) -> Validation:
    """Pick validation queries for the intents the knowledge base covers."""
    covered = {i for d in index.docs for i in d.intents}
    by_intent: dict[str, list[str]] = {}
    for ex in load_intent_csv(intent_csv):
        if ex.intent in covered:
            by_intent.setdefault(str(ex.intent), []).append(ex.text)
    in_scope = [
        (t, intent) for intent, texts in sorted(by_intent.items()) for t in sorted(texts, key=_stable_rank)[:per_intent]
    ]
    tune_oos, test_oos = load_oos(oos_file)
    return Validation(in_scope, tune_oos, test_oos)


def _confidences(index: HybridIndex, val: Validation) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    in_conf, in_top1 = [], []
    for text, intent in val.in_scope:
        hits = index.search(text, k=1)
        in_conf.append(hits[0].cosine if hits else 0.0)
        in_top1.append(bool(hits) and intent in hits[0].doc.intents)
    tune_oos = [h[0].cosine if (h := index.search(t, k=1)) else 0.0 for t in val.oos_tune]
    test_oos = [h[0].cosine if (h := index.search(t, k=1)) else 0.0 for t in val.oos_test]
    return np.array(in_conf), np.array(in_top1), np.array(tune_oos), np.array(test_oos)


def tune_on(
    index: HybridIndex, val: Validation, *, precision: float = 0.9, max_oos_accept: float = 0.1
) -> tuple[Thresholds, dict[str, float]]:
    """Tuned thresholds and what they do on the validation data (OOS on the held-out half)."""
    in_conf, in_top1, oos_tune, oos_test = _confidences(index, val)
    th = tune(
        in_conf, in_top1, oos_tune, precision=precision, max_oos_accept=max_oos_accept,
        source=f"{len(in_conf)} intent utterances, {len(oos_tune)} out-of-scope messages",
    )  # fmt: skip
    answered = in_conf >= th.answer
    report = {
        "in_scope_top1": float(in_top1.mean()) if len(in_top1) else 0.0,
        "in_scope_answered": float(answered.mean()) if len(answered) else 0.0,
        "answer_precision_in_scope": float(in_top1[answered].mean()) if answered.any() else 0.0,
        "oos_unsure_heldout": float((oos_test < th.suggest).mean()) if len(oos_test) else 0.0,
        "oos_answered_heldout": float((oos_test >= th.answer).mean()) if len(oos_test) else 0.0,
    }
    return th, report
