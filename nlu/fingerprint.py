"""What an NLU model was trained from: a hash of its input files and the options that differ from the config.

``nlu.train`` writes the stamp into every model it saves; the launcher retrains a model the
project trained with the shipped settings when the hash no longer matches, so editing
``bot/data/nlu.yml``, the CSVs, ``nlu/config.yml`` or the training code takes effect on the next run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.settings import ROOT

STAMP_FILE = "inputs.json"


def training_inputs(root: Path = ROOT) -> list[Path]:
    """The files a default ``nlu.train`` run reads: config, data, the bot's NLU YAML, the FAQ, the code."""
    nlu = root / "nlu"
    files = [nlu / "config.yml", root / "bot" / "data" / "nlu.yml", root / "bot" / "kb" / "faq.yml"]
    files += sorted(f for f in (nlu / "data").rglob("*") if f.is_file())
    files += sorted(nlu.glob("*.py"))
    return [f for f in files if f.exists()]


def inputs_hash(root: Path = ROOT) -> str:
    """Hash of the training inputs: their paths relative to ``root`` and their contents."""
    h = hashlib.sha256()
    for f in training_inputs(root):
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def options(cfg: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``cfg`` that differ from the shipped config (``{}``: trained as shipped)."""
    return {k: v for k, v in sorted(cfg.items()) if default.get(k, object()) != v}


def write_stamp(model_dir: Path, inputs: str, opts: dict[str, Any]) -> None:
    """Record in ``model_dir`` which inputs and options it was trained from."""
    text = json.dumps({"inputs": inputs, "options": opts}, indent=2, sort_keys=True, default=str)
    (model_dir / STAMP_FILE).write_text(text + "\n", encoding="utf-8")


def read_stamp(model_dir: Path) -> dict[str, Any] | None:
    """The stamp of a model (``None`` when it has none or it is unreadable, e.g. trained before stamps)."""
    try:
        data = json.loads((model_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("inputs"), str) else None
