"""Batch inference and metrics for the joint model: intent accuracy, sentiment macro-recall, entity F1."""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from nlu.data import Example
from nlu.encoding import decode_spans, encode, tag_names
from nlu.model import JointClassifier, ModelMeta


@torch.inference_mode()
def forward_batches(
    model: JointClassifier,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    texts: list[str],
    device: torch.device,
    batch_size: int = 128,
) -> tuple[torch.Tensor, torch.Tensor, list[list[dict]]]:
    """Intent logits [N,I], sentiment logits [N,S] (CPU) and decoded entity spans per text."""
    model.eval()
    tags = tag_names(meta.entities)
    intents, sentiments, spans = [], [], []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        enc = encode(tokenizer, chunk, meta.max_length, offsets=True)
        offsets = enc.pop("offset_mapping").tolist()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(**{k: v.to(device) for k, v in enc.items()})
        intents.append(out["intent"].float().cpu())
        sentiments.append(out["sentiment"].float().cpu())
        if meta.entities:
            probs = torch.softmax(out["tags"].float().cpu(), -1)
            spans += [decode_spans(t, [tuple(o) for o in offsets[j]], probs[j], tags) for j, t in enumerate(chunk)]
        else:
            spans += [[] for _ in chunk]
    if not intents:
        n_i, n_s = len(model.intent_head.bias), len(model.sentiment_head.bias)
        return torch.zeros(0, n_i), torch.zeros(0, n_s), []
    return torch.cat(intents), torch.cat(sentiments), spans


def macro_recall(pred: list[int], gold: list[int], n: int) -> float:
    """Mean per-class recall over classes present in ``gold``."""
    recalls = []
    for c in range(n):
        idx = [i for i, g in enumerate(gold) if g == c]
        if idx:
            recalls.append(sum(pred[i] == c for i in idx) / len(idx))
    return float(np.mean(recalls)) if recalls else 0.0


def span_f1(pred: list[list[dict]], gold: list[Example]) -> float:
    """Micro F1 of exact (type, start, end) entity spans."""
    p = {(i, s["entity"], s["start"], s["end"]) for i, spans in enumerate(pred) for s in spans}
    g = {(i, e.entity, e.start, e.end) for i, ex in enumerate(gold) for e in ex.entities}
    if not p and not g:
        return 1.0
    return 2 * len(p & g) / (len(p) + len(g))


def evaluate(
    model: JointClassifier,
    tokenizer: PreTrainedTokenizerBase,
    meta: ModelMeta,
    dev: list[Example],
    device: torch.device,
) -> dict[str, float]:
    """Intent accuracy, sentiment macro-recall and entity span F1 (annotated examples) on ``dev``."""
    metrics: dict[str, float] = {}
    i_ex = [e for e in dev if e.intent]
    if i_ex:
        logits, _, spans = forward_batches(model, tokenizer, meta, [e.text for e in i_ex], device)
        gold = torch.tensor([meta.intents.index(str(e.intent)) for e in i_ex])
        metrics["intent_accuracy"] = float((logits.argmax(-1) == gold).float().mean())
        annotated = [(s, e) for s, e in zip(spans, i_ex, strict=True) if e.annotated]
        if meta.entities and annotated:
            metrics["entity_f1"] = span_f1([s for s, _ in annotated], [e for _, e in annotated])
    s_ex = [e for e in dev if e.sentiment]
    if s_ex:
        _, logits, _ = forward_batches(model, tokenizer, meta, [e.text for e in s_ex], device)
        gold_s = [meta.sentiments.index(str(e.sentiment)) for e in s_ex]
        metrics["sentiment_macro_recall"] = macro_recall(logits.argmax(-1).tolist(), gold_s, len(meta.sentiments))
    return metrics
