"""The realistic evaluation set: labelled customer messages written independently of the training data.

Each JSONL line: ``{"text", "intent", "faq", "entities": [{"entity", "value"[, "start", "end"]}],
"sentiment"}``. ``intent`` is one of the bot's intents, or ``"none"``: then ``faq`` names the FAQ
entry that answers the message (a topic without an intent) or is null (out of scope).

``python -m nlu.evalset build RAW_DIR OUT_DIR`` validates the writers' files, adds character
offsets and splits them into ``realistic_dev.jsonl`` (calibration, model choice) and
``realistic_test.jsonl`` (reported figures only; never read by training).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nlu.data import SENTIMENTS, Entity
from nlu.errors import DataError

log = logging.getLogger(__name__)
NONE = "none"
DEV_FILE, TEST_FILE = "realistic_dev.jsonl", "realistic_test.jsonl"
Kind = Literal["intent", "faq", "oos"]


@dataclass(frozen=True)
class Labelled:
    """One labelled customer message."""

    text: str
    intent: str | None  # None: no intent (an FAQ-only topic, or out of scope)
    faq: str | None = None  # the FAQ entry that answers it, for messages without an intent
    entities: tuple[Entity, ...] = field(default=())
    sentiment: str | None = None

    @property
    def kind(self) -> Kind:
        """``intent`` (maps to a bot intent), ``faq`` (an FAQ-only topic) or ``oos`` (out of scope)."""
        return "intent" if self.intent else "faq" if self.faq else "oos"

    @property
    def label(self) -> str:
        """Intent, FAQ entry or ``oos``: what a stratified split keeps together."""
        return self.intent or (f"faq:{self.faq}" if self.faq else "oos")


def _entities(text: str, raw: object, where: str) -> tuple[Entity, ...]:
    if not isinstance(raw, list):
        raise DataError(f"{where}: entities must be a list")
    out: list[Entity] = []
    for e in raw:
        if not isinstance(e, dict) or not isinstance(e.get("entity"), str) or not isinstance(e.get("value"), str):
            raise DataError(f"{where}: an entity needs string 'entity' and 'value'")
        start = e["start"] if isinstance(e.get("start"), int) else text.find(e["value"])
        while start >= 0 and any(o.start == start for o in out):  # the same value twice: the next occurrence
            start = text.find(e["value"], start + 1)
        if start < 0 or text[start : start + len(e["value"])] != e["value"]:
            raise DataError(f"{where}: entity value {e['value']!r} is not in the text")
        out.append(Entity(e["entity"], start, start + len(e["value"])))
    return tuple(sorted(out, key=lambda o: o.start))


def parse_line(line: str, where: str) -> Labelled:
    """One JSONL line → :class:`Labelled` (``where`` names file and line in errors)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
        raise DataError(f"{where}: needs a non-empty 'text'")
    intent, faq, sentiment = row.get("intent"), row.get("faq"), row.get("sentiment")
    if not isinstance(intent, str) or not intent:
        raise DataError(f"{where}: needs an 'intent' (an intent name or \"none\")")
    if faq is not None and (not isinstance(faq, str) or intent != NONE):
        raise DataError(f"{where}: 'faq' is a string, and only for intent \"none\"")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise DataError(f"{where}: sentiment must be one of {', '.join(SENTIMENTS)}")
    text = row["text"]
    return Labelled(
        text=text,
        intent=None if intent == NONE else intent,
        faq=faq or None,
        entities=_entities(text, row.get("entities", []), where),
        sentiment=sentiment,
    )


def load(path: Path) -> list[Labelled]:
    """Read a JSONL file of labelled messages.

    Raises:
        DataError: unreadable file or a malformed line (file and line named).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    return [parse_line(ln, f"{path}:{n}") for n, ln in enumerate(lines, 1) if ln.strip()]


def to_json(item: Labelled) -> str:
    """The JSONL line of ``item`` (entities with offsets)."""
    ents = [{"entity": e.entity, "value": item.text[e.start : e.end], "start": e.start, "end": e.end}
            for e in item.entities]  # fmt: skip
    row = {"text": item.text, "intent": item.intent or NONE, "faq": item.faq, "entities": ents,
           "sentiment": item.sentiment}  # fmt: skip
    return json.dumps(row, ensure_ascii=False)


def split(items: list[Labelled], dev_fraction: float = 0.5) -> tuple[list[Labelled], list[Labelled]]:
    """Dev and test parts, stratified by label; within a label, ordered by a hash of the text.

    The order does not depend on the files' order, so adding messages moves few others.
    """
    groups: dict[str, list[Labelled]] = defaultdict(list)
    for item in items:
        groups[item.label].append(item)
    dev, test = [], []
    for label in sorted(groups):
        ordered = sorted(groups[label], key=lambda i: hashlib.sha256(i.text.lower().encode()).hexdigest())
        n_dev = round(len(ordered) * dev_fraction)
        dev += ordered[:n_dev]
        test += ordered[n_dev:]
    return dev, test


def dedupe(items: list[Labelled]) -> list[Labelled]:
    """First occurrence of each text (case and surrounding space ignored)."""
    seen: set[str] = set()
    out = []
    for item in items:
        key = " ".join(item.text.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def build(raw_dir: Path, out_dir: Path, *, intents: set[str], faq_ids: set[str]) -> tuple[int, int]:
    """Validate every ``*.jsonl`` in ``raw_dir`` against the bot's intents and FAQ ids, split, write.

    Returns:
        (dev size, test size).
    """
    items: list[Labelled] = []
    for path in sorted(raw_dir.glob("*.jsonl")):
        for n, item in enumerate(load(path), 1):
            if item.intent and item.intent not in intents:
                raise DataError(f"{path}:{n}: unknown intent {item.intent!r}")
            if item.faq and item.faq not in faq_ids:
                raise DataError(f"{path}:{n}: unknown FAQ entry {item.faq!r}")
            items.append(item)
    dev, test = split(dedupe(items))
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in ((DEV_FILE, dev), (TEST_FILE, test)):
        (out_dir / name).write_text("".join(to_json(i) + "\n" for i in part), encoding="utf-8")
    return len(dev), len(test)


def main(argv: list[str] | None = None) -> None:
    """CLI: ``python -m nlu.evalset build RAW_DIR OUT_DIR``."""
    import yaml

    from core.settings import ROOT

    p = argparse.ArgumentParser(prog="python -m nlu.evalset", description=__doc__)
    p.add_argument("command", choices=["build"])
    p.add_argument("raw_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    domain = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())
    kb = yaml.safe_load((ROOT / "bot" / "kb" / "faq.yml").read_text())
    try:
        n_dev, n_test = build(
            args.raw_dir, args.out_dir, intents=set(domain["intents"]), faq_ids={e["id"] for e in kb["entries"]}
        )
    except DataError as exc:
        raise SystemExit(f"error: {exc}") from exc
    log.info("wrote %d dev and %d test messages to %s", n_dev, n_test, args.out_dir)


if __name__ == "__main__":
    main()
