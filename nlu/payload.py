"""Rasa button payloads (``/intent{"slot": "value"}``) parsed without the model."""

from __future__ import annotations

import json
import re
from typing import Any

_PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_][\w-]*)(?P<entities>\{.*\})?(?:@(?P<conf>[01](?:\.\d+)?))?$", re.S)


def parse_payload(text: str) -> dict[str, Any] | None:
    """Return ``{"intent", "entities"}`` for a ``/intent{...}`` payload, or None for free text.

    Entity values may be scalars or lists (Rasa allows both); anything else makes
    the text count as free text, so a malformed payload is never half-applied.
    """
    m = _PAYLOAD.match(text.strip())
    if not m:
        return None
    entities: list[dict[str, Any]] = []
    if m["entities"]:
        try:
            data = json.loads(m["entities"])
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        for key, value in data.items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, (dict, list)):
                    return None
                entities.append({"entity": str(key), "value": v, "start": 0, "end": 0})
    confidence = float(m["conf"]) if m["conf"] else 1.0
    return {"intent": m["intent"], "confidence": confidence, "entities": entities}
