"""A trained recommender on disk: the sequence model, item-KNN, popularity and the vocabulary.

Layout: ``<root>/<version>/`` holds ``net.pt``, ``net.json``, ``vocab.json``, ``knn.npz``,
``popularity.npy``, ``intent.json`` (purchase intent) and ``card.json`` (metrics);
``<root>/current`` names the version in use.
A new version is written completely before ``current`` is switched (atomic rename), so a
running service never reads a half-written model and picks the new one up on its next check.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse

from recommender.errors import ModelNotFoundError
from recommender.intent import IntentModel
from recommender.nets import NetConfig, SequenceNet, build_net
from recommender.sequences import Vocabulary


@dataclass
class Bundle:
    """Everything the service needs to score items for a history."""

    version: str
    vocab: Vocabulary
    net: SequenceNet | None
    knn: sparse.csr_matrix
    popularity: np.ndarray  # [n_items + 1]
    card: dict[str, Any]
    intent: IntentModel | None = None


def save_bundle(root: Path, bundle: Bundle) -> Path:
    """Write a new version under ``root`` and make it current; returns its directory."""
    version = bundle.version or time.strftime("%Y%m%d-%H%M%S")
    out = root / version
    out.mkdir(parents=True, exist_ok=False)
    (out / "vocab.json").write_text(json.dumps(bundle.vocab.products))
    if bundle.net is not None:
        torch.save(bundle.net.state_dict(), out / "net.pt")
        (out / "net.json").write_text(json.dumps(bundle.net.cfg.to_dict()))
    sparse.save_npz(out / "knn.npz", bundle.knn)
    np.save(out / "popularity.npy", bundle.popularity)
    (out / "card.json").write_text(json.dumps(bundle.card, indent=2))
    if bundle.intent is not None:
        bundle.intent.save(out / "intent.json")
    pointer = root / "current.tmp"
    pointer.write_text(version)
    os.replace(pointer, root / "current")
    return out


def current_version(root: Path) -> str | None:
    """The version named by ``<root>/current``, if any."""
    pointer = root / "current"
    return pointer.read_text().strip() if pointer.exists() else None


def load_bundle(root: Path, version: str | None = None) -> Bundle:
    """Load a version (default: the current one) onto the CPU.

    Raises:
        ModelNotFoundError: nothing trained under ``root`` yet.
    """
    version = version or current_version(root)
    if not version or not (root / version / "vocab.json").exists():
        raise ModelNotFoundError(f"no trained recommender under {root}: run `python -m recommender.train`")
    d = root / version
    net = None
    if (d / "net.json").exists():
        net = build_net(NetConfig(**json.loads((d / "net.json").read_text())))
        net.load_state_dict(torch.load(d / "net.pt", map_location="cpu", weights_only=True))
        net.eval()
    return Bundle(
        version=version,
        vocab=Vocabulary(json.loads((d / "vocab.json").read_text())),
        net=net,
        knn=sparse.load_npz(d / "knn.npz").tocsr(),
        popularity=np.load(d / "popularity.npy"),
        card=json.loads((d / "card.json").read_text()),
        intent=IntentModel.load(d / "intent.json") if (d / "intent.json").exists() else None,
    )
