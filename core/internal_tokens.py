"""Shared secrets of the internal services, generated on the first run when the environment has none.

The default stack (``make run``) protects every internal service with a token, like a
deployment does: Rasa's HTTP API and REST channel (``RASA_TOKEN``, sent by the gateway), the
action server (``ACTION_TOKEN``, sent by Rasa), the NLU service (``NLU_TOKEN``, sent by Rasa and
the monitor) and the gateway's ``/metrics`` (``METRICS_TOKEN``, sent by the scraper). A token set in
the environment or `.env` wins; a missing one is generated once and kept in
``var/internal-tokens.json`` (mode 600), so restarts keep working and nothing is ever logged.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from core.errors import ConfigError
from core.settings import Settings

TOKEN_FIELDS = ("nlu_token", "rasa_token", "action_token", "metrics_token")
FILE_NAME = "internal-tokens.json"


def tokens_file(settings: Settings) -> Path:
    """Where generated tokens are kept."""
    return settings.var_dir / FILE_NAME


def with_internal_tokens(settings: Settings) -> Settings:
    """``settings`` with every empty internal token filled from the tokens file (generated when missing)."""
    missing = [name for name in TOKEN_FIELDS if not getattr(settings, name)]
    if not missing:
        return settings
    path = tokens_file(settings)
    stored = _read(path)
    fresh = {name: secrets.token_urlsafe(32) for name in missing if not stored.get(name)}
    if fresh:
        stored.update(fresh)
        _write(path, stored)
    return settings.model_copy(update={name: stored[name] for name in missing})


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        problem = f"{path} is not readable JSON ({exc.__class__.__name__}); delete it to make new tokens"
        raise ConfigError(problem) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object; delete it to make new tokens")
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def _write(path: Path, data: dict[str, str]) -> None:
    """Write with mode 600 from the start (never world-readable, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
