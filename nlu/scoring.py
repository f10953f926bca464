"""Scores of parse results against labelled customer messages (the realistic evaluation).

Protocol of every figure (all shares in 0..1):

- ``intent_accuracy``: in-scope messages (those with an intent) whose served top intent is the
  gold one; an ``nlu_fallback`` counts as wrong. ``fallback_share``: in-scope messages that fell back.
- ``oos_confident_wrong``: out-of-scope messages given an intent instead of ``nlu_fallback``.
- ``faq_topic_fallback``: messages on an FAQ-only topic that fell back (so retrieval answers them).
- ``spurious_entity_rate``: messages with at least one entity that is not in their gold labels
  (type and value); ``entity_precision`` / ``entity_recall`` over (type, value) pairs.
- ``sentiment_macro_recall``: mean recall over the three classes; ``neutral_called_negative``:
  neutral messages labelled negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nlu.data import SENTIMENTS
from nlu.evalset import Labelled

FALLBACK = "nlu_fallback"


def _share(flags: Sequence[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def entity_pairs(parse: dict[str, Any]) -> set[tuple[str, str]]:
    """(type, value) of every entity in a parse result."""
    return {(str(e["entity"]), str(e["value"]).strip()) for e in parse.get("entities") or []}


def _gold_pairs(item: Labelled) -> set[tuple[str, str]]:
    return {(e.entity, item.text[e.start : e.end].strip()) for e in item.entities}


LABELLED_TYPES = frozenset({"order_id", "invoice_id", "email", "max_price"})  # what the evaluation set labels


def entity_scores(
    items: Sequence[Labelled], parses: Sequence[dict[str, Any]], types: frozenset[str] = LABELLED_TYPES
) -> dict[str, float]:
    """Spurious-entity rate, entity precision and recall over the entity ``types`` the set labels.

    Catalog entities (``product``, ``brand``) depend on the shop's catalog and are not labelled.
    """
    spurious, hit, predicted, gold_n = [], 0, 0, 0
    for item, parse in zip(items, parses, strict=True):
        pred, gold = {p for p in entity_pairs(parse) if p[0] in types}, _gold_pairs(item)
        spurious.append(bool(pred - gold))
        hit += len(pred & gold)
        predicted += len(pred)
        gold_n += len(gold)
    return {
        "spurious_entity_rate": _share(spurious),
        "entity_precision": round(hit / predicted, 4) if predicted else 1.0,
        "entity_recall": round(hit / gold_n, 4) if gold_n else 1.0,
        "entities_predicted": predicted,
        "entities_gold": gold_n,
    }


def sentiment_scores(items: Sequence[Labelled], parses: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Macro-averaged recall over the classes present, and neutral messages called negative."""
    pairs = [(i.sentiment, (p.get("sentiment") or {}).get("label")) for i, p in zip(items, parses, strict=True)]
    pairs = [(g, p) for g, p in pairs if g]
    recalls = [_share([p == c for g, p in pairs if g == c]) for c in SENTIMENTS if any(g == c for g, _ in pairs)]
    return {
        "sentiment_macro_recall": round(sum(recalls) / len(recalls), 4) if recalls else 0.0,
        "neutral_called_negative": _share([p == "negative" for g, p in pairs if g == "neutral"]),
        "sentiment_n": len(pairs),
    }


def score(items: Sequence[Labelled], parses: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Every figure of the module docstring for ``parses[i]`` answering ``items[i]``."""
    top = [str((p.get("intent") or {}).get("name")) for p in parses]
    by_kind: dict[str, list[tuple[Labelled, str]]] = {"intent": [], "faq": [], "oos": []}
    for item, name in zip(items, top, strict=True):
        by_kind[item.kind].append((item, name))
    return {
        "in_scope_n": len(by_kind["intent"]),
        "intent_accuracy": _share([name == i.intent for i, name in by_kind["intent"]]),
        "fallback_share": _share([name == FALLBACK for _, name in by_kind["intent"]]),
        "oos_n": len(by_kind["oos"]),
        "oos_confident_wrong": _share([name != FALLBACK for _, name in by_kind["oos"]]),
        "faq_topic_n": len(by_kind["faq"]),
        "faq_topic_fallback": _share([name == FALLBACK for _, name in by_kind["faq"]]),
        **entity_scores(items, parses),
        **sentiment_scores(items, parses),
    }


def confusions(items: Sequence[Labelled], parses: Sequence[dict[str, Any]], top: int = 15) -> list[tuple[str, int]]:
    """The most frequent ``gold → predicted`` mistakes on in-scope messages."""
    counts: dict[str, int] = {}
    for item, parse in zip(items, parses, strict=True):
        name = str((parse.get("intent") or {}).get("name"))
        if item.intent and name != item.intent:
            key = f"{item.intent} → {name}"
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])[:top]
