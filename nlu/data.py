"""Training examples: Rasa NLU YAML, intent CSVs and sentiment CSVs → `Example`s."""

from __future__ import annotations

import logging
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from core.csvfile import read_rows
from nlu.errors import DataError

log = logging.getLogger(__name__)
SENTIMENTS = ("negative", "neutral", "positive")
_ANNOTATION = re.compile(r"\[(?P<value>[^\]]+)\]\((?P<entity>[^)]+)\)")


@dataclass(frozen=True)
class Entity:
    """A labelled span of an example, character offsets into ``Example.text``."""

    entity: str
    start: int
    end: int


@dataclass(frozen=True)
class Example:
    """One training sentence; ``intent`` or ``sentiment`` may be None (multi-task data)."""

    text: str
    intent: str | None = None
    sentiment: str | None = None
    entities: tuple[Entity, ...] = field(default=())
    annotated: bool = False  # True when ``entities`` lists every entity in the text
    source: str = ""  # where it came from, when training treats it specially ("customer")


def strip_annotations(raw: str) -> tuple[str, tuple[Entity, ...]]:
    """Turn Rasa's ``[value](entity)`` markup into plain text plus entity spans."""
    text, ents, pos = [], [], 0
    for m in _ANNOTATION.finditer(raw):
        text.append(raw[pos : m.start()])
        start = sum(len(t) for t in text)
        text.append(m["value"])
        ents.append(Entity(m["entity"].split(":")[0].strip(), start, start + len(m["value"])))
        pos = m.end()
    text.append(raw[pos:])
    return "".join(text), tuple(ents)


def load_rasa_yaml(path: Path) -> list[Example]:
    """Read the ``nlu:`` intent blocks of a Rasa 3 NLU YAML file."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: invalid YAML: {exc}") from exc
    out: list[Example] = []
    for i, block in enumerate(doc.get("nlu") or []):
        if "intent" not in block:
            continue
        lines = str(block.get("examples", "")).splitlines()
        items = [ln.strip()[1:].strip() for ln in lines if ln.strip().startswith("-")]
        if not items:
            raise DataError(f"{path}: intent block {i} ({block['intent']}) has no examples")
        for item in items:
            text, ents = strip_annotations(item)
            out.append(Example(text=text, intent=block["intent"], entities=ents, annotated=True))
    return out


ANNOTATED_SOURCES = {"llm4514"}  # Bitext rows whose entity columns are complete


def load_intent_csv(path: Path) -> list[Example]:
    """Read ``text,intent`` rows, with optional ``source,entity,start,end`` columns.

    A row's entity labels count as complete (``annotated``) when its ``source`` is listed
    in ``ANNOTATED_SOURCES`` or when the file has entity columns but no source column.
    """
    out = []
    for line, row in read_rows(path, ("text", "intent"), DataError):
        text, intent = (row["text"] or "").strip(), (row["intent"] or "").strip()
        if not text or not intent:
            raise DataError(f"{path}:{line}: empty text or intent")
        entities: tuple[Entity, ...] = ()
        if row.get("entity"):
            try:
                start, end = int(row["start"]), int(row["end"])
            except (TypeError, ValueError) as exc:
                raise DataError(f"{path}:{line}: entity start/end are not integers") from exc
            if not 0 <= start < end <= len(text):
                raise DataError(f"{path}:{line}: entity span {start}:{end} outside the text")
            entities = (Entity(row["entity"], start, end),)
        has_entity_columns = "entity" in row
        annotated = row["source"] in ANNOTATED_SOURCES if "source" in row else has_entity_columns
        out.append(Example(text=text, intent=intent, entities=entities, annotated=annotated))
    return out


def load_sentiment_csv(path: Path) -> list[Example]:
    """Read ``text,label`` rows; label is a name or TweetEval's 0/1/2."""
    out = []
    for line, row in read_rows(path, ("text", "label"), DataError):
        label = (row["label"] or "").strip()
        if label.isdigit() and int(label) < len(SENTIMENTS):
            label = SENTIMENTS[int(label)]
        if label not in SENTIMENTS or not (row["text"] or "").strip():
            raise DataError(f"{path}:{line}: bad sentiment row (label {label!r})")
        out.append(Example(text=row["text"].strip(), sentiment=label))
    return out


def load_customer_csv(path: Path) -> list[Example]:
    """Read ``text,intent,sentiment`` rows whose text marks every entity in Rasa's ``[value](type)`` markup.

    The rows are fully annotated (text without markup has no entity), and each carries both an
    intent and, when the column is filled, a sentiment label.
    """
    out = []
    for line, row in read_rows(path, ("text", "intent"), DataError):
        raw, intent = (row["text"] or "").strip(), (row["intent"] or "").strip()
        sentiment = (row.get("sentiment") or "").strip() or None
        if not raw or not intent:
            raise DataError(f"{path}:{line}: empty text or intent")
        if sentiment is not None and sentiment not in SENTIMENTS:
            raise DataError(f"{path}:{line}: sentiment {sentiment!r} is not one of {', '.join(SENTIMENTS)}")
        text, ents = strip_annotations(raw)
        out.append(Example(text, intent, sentiment, ents, annotated=True, source="customer"))
    return out


def faq_topic_examples(name: str, kb_files: list[Path], csv_files: list[Path]) -> list[Example]:
    """Examples of the class ``name`` (FAQ topics without an intent).

    From the knowledge bases: the questions and alternatives of the entries that list no
    intent; from the CSVs: ``text,faq,sentiment`` customer messages about those topics.
    """
    out: list[Example] = []
    for path in kb_files:
        try:
            kb = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(f"{path}: cannot read the FAQ knowledge base: {exc}") from exc
        for entry in kb.get("entries") or []:
            if not entry.get("intents"):
                texts = [entry.get("question"), *(entry.get("alternatives") or [])]
                out += [Example(str(t), intent=name, annotated=True) for t in texts if t]
    for path in csv_files:
        for line, row in read_rows(path, ("text", "faq"), DataError):
            sentiment = (row.get("sentiment") or "").strip() or None
            if not (row["text"] or "").strip() or (sentiment and sentiment not in SENTIMENTS):
                raise DataError(f"{path}:{line}: empty text or bad sentiment")
            out.append(Example(row["text"].strip(), name, sentiment, annotated=True, source="customer"))
    return out


def keep_entity_types(examples: list[Example], types: set[str]) -> list[Example]:
    """Drop entity spans of other types: the model learns them as plain text (``O``)."""
    return [
        ex if all(e.entity in types for e in ex.entities)
        else replace(ex, entities=tuple(e for e in ex.entities if e.entity in types))
        for ex in examples
    ]  # fmt: skip


def by_intent(examples: list[Example]) -> list[tuple[str | None, list[Example]]]:
    """Examples grouped by intent, groups in a fixed (sorted) order, examples in input order."""
    groups: dict[str | None, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[ex.intent].append(ex)
    return [(key, groups[key]) for key in sorted(groups, key=str)]


def cap_per_label(examples: list[Example], cap: int, seed: int) -> list[Example]:
    """Keep at most ``cap`` examples per intent (random, reproducible); 0 = no cap."""
    if cap <= 0:
        return list(examples)
    rng = random.Random(seed)
    out: list[Example] = []
    for _, items in by_intent(examples):
        out.extend(rng.sample(items, cap) if len(items) > cap else items)
    return out


def stratified_split(examples: list[Example], dev_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Split by label (intent, else sentiment) so every label appears in both parts."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[str(ex.intent or ex.sentiment)].append(ex)
    rng = random.Random(seed)
    train, dev = [], []
    for key in sorted(groups):
        items = groups[key][:]
        rng.shuffle(items)
        n_dev = max(1, round(len(items) * dev_fraction)) if len(items) > 2 else 0
        dev.extend(items[:n_dev])
        train.extend(items[n_dev:])
    return train, dev


_ID_SLOT = re.compile(r"\b(order|purchase|invoice)\b(?!\s*(?:#|number|no\.?)?\s*\d)", re.IGNORECASE)


def augment_ids(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """Add copies of examples with a random order/invoice number after "order"/"invoice".

    Intent data rarely carries ids while the ``inform`` examples do; without this the
    model learns "a number means inform" and misreads "where is my order 100234".
    """
    rng = random.Random(seed)
    out = list(examples)
    for ex in examples:
        m = _ID_SLOT.search(ex.text)
        if ex.intent is None or m is None or rng.random() >= fraction:
            continue
        word = m.group(1).lower()
        number = f"INV-{rng.randint(100, 99999)}" if word == "invoice" else str(rng.randint(10_000, 9_999_999))
        sep = rng.choice([" ", " #", " number ", " no. "])
        out.append(Example(text=ex.text[: m.end()] + sep + number + ex.text[m.end() :], intent=ex.intent))
    return out


def oversample(examples: list[Example], minimum: int, seed: int) -> list[Example]:
    """Repeat examples of small intents until each has at least ``minimum``."""
    rng = random.Random(seed)
    out: list[Example] = []
    for key, items in by_intent(examples):
        out.extend(items)
        if key is not None and len(items) < minimum:
            out.extend(rng.choices(items, k=minimum - len(items)))
    return out


def length_grouped_batches(
    examples: list[Example], batch_size: int, rng: random.Random, pool: int = 50
) -> list[list[Example]]:
    """Shuffled batches of similar-length texts (less padding, so faster steps on CPU).

    The examples are shuffled, cut into pools of ``pool`` batches, each pool sorted by text
    length and cut into batches; the batch order is shuffled again, so each epoch still sees
    a random mix. Every example appears exactly once.
    """
    order = examples[:]
    rng.shuffle(order)
    size = batch_size * pool
    batches: list[list[Example]] = []
    for start in range(0, len(order), size):
        chunk = sorted(order[start : start + size], key=lambda e: len(e.text))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches
