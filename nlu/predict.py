"""Inference: text → Rasa parse result (intent, ranking, entities, sentiment)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nlu import entities as regex_entities
from nlu.encoding import decode_spans, encode, merge_entities, tag_names
from nlu.errors import DataError, NLUError
from nlu.gazetteer import Gazetteer
from nlu.model import ModelMeta, load
from nlu.payload import parse_payload

log = logging.getLogger(__name__)
FALLBACK_INTENT = "nlu_fallback"
RANKING_SIZE = 10
CHUNK = 32  # texts per forward pass in parse_batch (length-sorted, so a chunk pads to similar lengths)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


BACKENDS = ("torch", "onnx", "onnx-int8")


class Predictor:
    """A loaded model plus the rules around it (payloads, regex entities, fallback).

    ``model`` is anything called as ``model(input_ids, attention_mask)`` returning the logits
    dict: the torch module or an ONNX Runtime session wrapper.
    """

    def __init__(
        self,
        model: Callable[..., dict[str, torch.Tensor]],
        tokenizer: Any,
        meta: ModelMeta,
        gazetteer: Gazetteer | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.tags = tag_names(meta.entities)
        self.gazetteer = gazetteer

    @torch.inference_mode()
    def parse_batch(self, texts: list[str]) -> list[dict[str, Any]]:
        """Parse many texts: sorted by length into chunks of ``CHUNK`` so little is padding, results in order."""
        results: list[dict[str, Any] | None] = [self._payload_result(t) for t in texts]
        todo = sorted((i for i, r in enumerate(results) if r is None), key=lambda i: len(texts[i]))
        for start in range(0, len(todo), CHUNK):
            self._parse_chunk(texts, todo[start : start + CHUNK], results)
        return [r for r in results if r is not None]

    def _parse_chunk(self, texts: list[str], todo: list[int], results: list[dict[str, Any] | None]) -> None:
        """One forward pass over ``texts[i] for i in todo`` (dynamic padding), written into ``results``."""
        if todo:
            # Control characters become spaces (same length, so offsets still index the original text).
            clean = [_CONTROL.sub(" ", texts[i]) for i in todo]
            enc = encode(self.tokenizer, [c if c.strip() else "." for c in clean], self.meta.max_length, offsets=True)
            offsets = enc.pop("offset_mapping").tolist()
            out = self.model(enc["input_ids"], enc["attention_mask"])
            intent_p = torch.softmax(out["intent"].float() / self.meta.temperature, -1)
            sent_logits = out["sentiment"].float()
            if self.meta.sentiment_bias:
                sent_logits = sent_logits + torch.tensor(self.meta.sentiment_bias)
            sent_p = torch.softmax(sent_logits, -1)
            tag_p = torch.softmax(out["tags"].float(), -1)
            for row, i in enumerate(todo):
                learned = (
                    decode_spans(texts[i], [tuple(o) for o in offsets[row]], tag_p[row], self.tags)
                    if self.meta.entities and clean[row].strip()
                    else []
                )
                results[i] = self._model_result(texts[i], intent_p[row], sent_p[row], learned)

    def parse(self, text: str) -> dict[str, Any]:
        """Parse one message in Rasa's ``/model/parse`` format."""
        return self.parse_batch([text])[0]

    def _payload_result(self, text: str) -> dict[str, Any] | None:
        payload = parse_payload(text)
        if payload is None:
            return None
        intent = {"name": payload["intent"], "confidence": payload["confidence"]}
        return {
            "text": text,
            "intent": intent,
            "intent_ranking": [intent],
            "entities": payload["entities"],
            "sentiment": None,
        }

    def _model_result(
        self, text: str, intent_p: torch.Tensor, sent_p: torch.Tensor, learned: list[dict[str, Any]]
    ) -> dict[str, Any]:
        top = torch.topk(intent_p, k=min(RANKING_SIZE + 2, len(self.meta.intents)))
        ranking: list[dict[str, Any]] = [
            {"name": self.meta.intents[int(i)], "confidence": round(float(p), 6)}
            for p, i in zip(top.values, top.indices, strict=True)
        ]
        # The trained out-of-scope and FAQ-topic classes are not bot intents: they show as nlu_fallback
        # (then FAQ retrieval answers, suggests or admits it does not know).
        classes = self.meta.fallback_classes
        no_intent = max((float(r["confidence"]) for r in ranking if r["name"] in classes), default=-1.0)
        ranking = [r for r in ranking if r["name"] not in classes][:RANKING_SIZE]
        intent = dict(ranking[0])
        if no_intent > float(intent["confidence"]):
            intent = {"name": FALLBACK_INTENT, "confidence": round(no_intent, 6)}
            ranking = [intent, *ranking]
        elif float(intent["confidence"]) < self.meta.threshold or self._out_of_scope_p(intent_p) >= (
            self.meta.oos_threshold
        ):
            intent = {"name": FALLBACK_INTENT, "confidence": intent["confidence"]}
            ranking = [intent, *ranking]
        scores = {name: round(float(p), 6) for name, p in zip(self.meta.sentiments, sent_p, strict=True)}
        label = max(scores, key=lambda k: scores[k])
        return {
            "text": text,
            "intent": intent,
            "intent_ranking": ranking,
            "entities": merge_entities(
                [s for s in learned if regex_entities.plausible(s, self.meta.entity_threshold)], self._rules(text)
            ),
            "sentiment": {"label": label, "score": scores[label], "scores": scores},
        }

    def _out_of_scope_p(self, intent_p: torch.Tensor) -> float:
        """The probability of the trained out-of-scope class (0 without one)."""
        if self.meta.oos_intent not in self.meta.intents:
            return 0.0
        return float(intent_p[self.meta.intents.index(self.meta.oos_intent)])

    def _rules(self, text: str) -> list[dict[str, Any]]:
        """Exact-pattern entities, then catalog terms where no pattern matched."""
        found = regex_entities.extract(text)
        return merge_entities(self.gazetteer.extract(text), found) if self.gazetteer else found


def set_threads(threads: int = 0) -> None:
    """Torch intra-op threads: ``threads`` or all cores."""
    torch.set_num_threads(threads or os.cpu_count() or 1)


def load_predictor(path: Path, threads: int = 0, backend: str = "torch", catalog: Path | None = None) -> Predictor:
    """Load the model saved in ``path`` with the given backend (torch, onnx, onnx-int8).

    An ONNX file that is missing (a model trained before ONNX export existed) is exported
    on first load. ``catalog``: a catalog CSV whose products and brands become entities.
    """
    if backend not in BACKENDS:
        raise NLUError(f"unknown NLU backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    set_threads(threads)
    model, tokenizer, meta = load(path)
    runner: Callable[..., dict[str, torch.Tensor]] = model
    if backend != "torch":
        from nlu import onnx_backend

        file = path / (onnx_backend.INT8_FILE if backend == "onnx-int8" else onnx_backend.FP32_FILE)
        if not file.exists():
            onnx_backend.export(model, path, quantize=backend == "onnx-int8")
        runner = onnx_backend.OnnxRunner(file, threads)
    log.info("NLU model loaded from %s (%d intents, %s backend)", path, len(meta.intents), backend)
    return Predictor(runner, tokenizer, meta, _gazetteer(catalog))


def _gazetteer(catalog: Path | None) -> Gazetteer | None:
    """The catalog's terms; a catalog that cannot be read costs the catalog entities only, not the service."""
    if catalog is None:
        return None
    try:
        return Gazetteer.from_catalog_csv(catalog)
    except DataError as exc:
        log.warning("no catalog entities: %s", exc)
        return None
