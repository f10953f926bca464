"""The knowledge-base file format: a YAML list of FAQ entries, validated with line numbers.

```yaml
entries:
  - id: shipping-cost            # stable slug, unique
    question: How much does shipping cost?
    answer: Standard shipping is free over $50 ...
    alternatives: [What are your delivery fees?]   # optional other phrasings
    tags: [shipping]                               # optional
    links: [https://example-store.com/help/shipping]  # optional, http(s)
    intents: [delivery_options]                    # optional: bot intents this entry answers
```
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu.errors import KnowledgeBaseError

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
URL = re.compile(r"^https?://\S+$")
LIMITS = {"question": 1000, "answer": 10000}
LIST_KEYS = ("alternatives", "tags", "links", "intents")
KEYS = {"id", "question", "answer", *LIST_KEYS}


@dataclass(frozen=True)
class FaqSpec:
    """One FAQ entry as written in the knowledge-base file."""

    id: str
    question: str
    answer: str
    alternatives: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    intents: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)

    def content_hash(self) -> str:
        """Hash of everything but the line number: unchanged entries are skipped on re-import."""
        data = {k: v for k, v in asdict(self).items() if k != "line"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records each mapping's 1-based line under ``__line__``."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise KnowledgeBaseError(f"{where}: '{key}' must be a non-empty text")
    if len(value) > LIMITS[key]:
        raise KnowledgeBaseError(f"{where}: '{key}' is longer than {LIMITS[key]} characters")
    return value.strip()


def _strings(raw: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise KnowledgeBaseError(f"{where}: '{key}' must be a list of non-empty texts")
    if key == "links" and (bad := [v for v in value if not URL.match(v.strip())]):
        raise KnowledgeBaseError(f"{where}: link {bad[0]!r} is not an http(s) URL")
    return tuple(v.strip() for v in value)


def _entry(raw: Any, path: Path, default_line: int) -> FaqSpec:
    if not isinstance(raw, dict):
        raise KnowledgeBaseError(f"{path}:{default_line}: each entry must be a mapping with id, question, answer")
    line = int(raw.pop("__line__", default_line))
    where = f"{path}:{line}"
    if unknown := sorted(set(map(str, raw)) - KEYS):
        raise KnowledgeBaseError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(KEYS))}")
    entry_id = raw.get("id")
    if not isinstance(entry_id, str) or not SLUG.match(entry_id):
        raise KnowledgeBaseError(f"{where}: 'id' must be a slug of a-z, 0-9, '-' or '_' (got {entry_id!r})")
    where = f"{where} (entry '{entry_id}')"
    return FaqSpec(
        id=entry_id,
        question=_text(raw, "question", where),
        answer=_text(raw, "answer", where),
        **{key: _strings(raw, key, where) for key in LIST_KEYS},  # type: ignore[arg-type]
        line=line,
    )


def parse_kb(text: str, path: Path = Path("<kb>")) -> list[FaqSpec]:
    """Validate a whole knowledge-base text; raises `KnowledgeBaseError` naming the line of the first problem."""
    try:
        doc = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise KnowledgeBaseError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise KnowledgeBaseError(f"{path}:1: expected a mapping with an 'entries' list")
    entries = [_entry(raw, path, int(doc["__line__"])) for raw in doc["entries"]]
    seen: dict[str, int] = {}
    for e in entries:
        if e.id in seen:
            raise KnowledgeBaseError(f"{path}:{e.line}: duplicate id '{e.id}' (first at line {seen[e.id]})")
        seen[e.id] = e.line
    return entries


def load_kb(path: Path) -> list[FaqSpec]:
    """Read and validate a knowledge-base file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError(f"{path}: cannot read the knowledge base ({exc})") from exc
    return parse_kb(text, path)
