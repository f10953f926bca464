"""Tokenization for the joint model: dynamic padding, BIO tags from character spans, spans from tags."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from nlu.data import Example

OUTSIDE = "O"


def tag_names(entity_types: list[str]) -> list[str]:
    """BIO tag set: ``O`` then ``B-x``, ``I-x`` for each entity type."""
    return [OUTSIDE] + [f"{p}-{e}" for e in entity_types for p in ("B", "I")]


def encode(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int, *, offsets: bool = False
) -> dict[str, torch.Tensor]:
    """Tokenize with dynamic padding (to the longest text in the batch).

    Returns ``input_ids`` and ``attention_mask`` [B,T], plus ``offset_mapping`` [B,T,2]
    (character spans; (0, 0) for special and padding tokens) when ``offsets`` is set.
    """
    enc = tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=offsets,
    )
    out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if offsets:
        out["offset_mapping"] = enc["offset_mapping"]
    return out


def bio_labels(examples: list[Example], offset_mapping: torch.Tensor, tags: list[str]) -> torch.Tensor:
    """Token tag ids [B,T] for the examples' entity spans; -100 where there is nothing to learn.

    Special and padding tokens, and every token of an example whose entities are not
    annotated (``Example.annotated`` False), get -100.
    """
    index = {t: i for i, t in enumerate(tags)}
    labels = torch.full(offset_mapping.shape[:2], -100, dtype=torch.long)
    for row, ex in enumerate(examples):
        if not ex.annotated:
            continue
        previous: Any = None
        for col, (start, end) in enumerate(offset_mapping[row].tolist()):
            if end <= start:
                continue
            span = next((e for e in ex.entities if e.start <= start < e.end), None)
            if span is None or f"B-{span.entity}" not in index:
                labels[row, col] = index[OUTSIDE]
            else:
                prefix = "I" if previous is span else "B"
                labels[row, col] = index[f"{prefix}-{span.entity}"]
            previous = span
    return labels


def decode_spans(
    text: str, offsets: list[tuple[int, int]], probs: torch.Tensor, tags: list[str]
) -> list[dict[str, Any]]:
    """Entity spans in Rasa's format from one text's token tag probabilities [T,n_tags]."""
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    best_p, best = probs.max(-1)
    for (start, end), p, t in zip(offsets, best_p.tolist(), best.tolist(), strict=True):
        if end <= start:
            continue
        tag = tags[t]
        if tag == OUTSIDE:
            current = None
            continue
        prefix, etype = tag.split("-", 1)
        if current is not None and current["entity"] == etype and (prefix == "I" or start == current["end"]):
            current["end"], current["_p"] = end, [*current["_p"], p]
            continue
        current = {"entity": etype, "start": start, "end": end, "_p": [p]}
        spans.append(current)
    return [
        {
            "entity": s["entity"],
            "value": text[s["start"] : s["end"]],
            "start": s["start"],
            "end": s["end"],
            "confidence_entity": round(min(s["_p"]), 4),  # a span is as sure as its least sure token
            "extractor": "JointBERT",
        }
        for s in spans
    ]


def merge_entities(learned: list[dict[str, Any]], rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rule spans (exact patterns) win; learned spans fill what no rule span overlaps."""
    out = list(rules)
    for s in learned:
        if not any(r["start"] < s["end"] and s["start"] < r["end"] for r in rules):
            out.append(s)
    return sorted(out, key=lambda e: e["start"])
