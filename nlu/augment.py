"""Augmentation that reflects how people type in a chat window.

Template data is written in tidy sentences; customers write in lower case, drop punctuation and
apostrophes, make typos, and wrap requests in greetings and thanks. :func:`noisy` makes one such
copy of an example. Examples with entity spans are copied only by transformations that keep the
spans' characters and shift their offsets (wrappers, case, end punctuation), so the labels stay right.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from nlu.data import Entity, Example

OPENERS = ("hi ", "hello, ", "hey ", "hi there, ", "good morning, ", "excuse me, ", "um ", "quick question: ")
CLOSERS = (" thanks", " thank you", " pls", " please", " asap", " thx", "??", " !!", " :)", ". thanks in advance")
_WORD = re.compile(r"[A-Za-z]{4,}")
_KEYS = "qwertyuiopasdfghjklzxcvbnm"


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:  # swap two neighbours
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind < 0.7:  # drop one
        return word[:i] + word[i + 1 :]
    return word[:i] + rng.choice(_KEYS) + word[i + 1 :]  # wrong key


def _char_noise(text: str, rng: random.Random) -> str:
    """Typos in one or two words, lost apostrophes: for texts without entity spans only."""
    words = list(_WORD.finditer(text))
    for m in rng.sample(words, k=min(len(words), rng.choice((1, 1, 2)))):
        text = text[: m.start()] + _typo(m.group(), rng) + text[m.end() :]
    return text.replace("'", "") if rng.random() < 0.5 else text


def _shift(entities: tuple[Entity, ...], by: int) -> tuple[Entity, ...]:
    return tuple(Entity(e.entity, e.start + by, e.end + by) for e in entities)


def noisy(ex: Example, rng: random.Random) -> Example:
    """One chat-style copy of ``ex`` (same labels; entity offsets kept right)."""
    text, entities = ex.text, ex.entities
    if not entities and rng.random() < 0.6:
        text = _char_noise(text, rng)
    if rng.random() < 0.7:
        text = (
            text.lower()
            if not entities
            else "".join(
                c.lower() if not any(e.start <= i < e.end for e in entities) else c for i, c in enumerate(text)
            )
        )
    stripped = text.rstrip(".?! ")
    if len(stripped) >= max((e.end for e in entities), default=0) and rng.random() < 0.6:
        text = stripped
    if rng.random() < 0.35:
        opener = rng.choice(OPENERS)
        text, entities = opener + text, _shift(entities, len(opener))
    if rng.random() < 0.35:
        text += rng.choice(CLOSERS)
    return replace(ex, text=text, entities=entities)


def augment(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """``examples`` plus a noisy copy of a random ``fraction`` of those with an intent."""
    rng = random.Random(seed)
    extra = [noisy(ex, rng) for ex in examples if ex.intent and rng.random() < fraction]
    return examples + [ex for ex in extra if ex.text.strip()]
