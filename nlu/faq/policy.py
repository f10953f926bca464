"""When to answer, when to offer choices, when to admit not knowing.

The confidence is the best cosine between the query and the top entry's vectors. Two
thresholds, tuned on validation queries (in-scope with their right entry, and out-of-scope):

- ``answer``: at or above it, answer the top entry. Tuned as the lowest threshold whose
  answers are right at least ``precision`` of the time (wrong entry or out-of-scope = wrong).
- ``suggest``: at or above it, offer the top 3 as buttons ("did you mean…"). Tuned so at most
  ``max_oos_accept`` of out-of-scope queries get suggestions.
- below: say so and offer a person.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from nlu.faq.index import Hit

log = logging.getLogger(__name__)
Action = Literal["answer", "suggest", "unsure"]


@dataclass(frozen=True)
class Thresholds:
    """Cosine thresholds of the decision."""

    answer: float = 0.62
    suggest: float = 0.45
    tuned_on: str = "defaults"

    def save(self, path: Path) -> None:
        """Write as JSON."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Thresholds:
        """Read JSON written by `save`; defaults when the file is missing or unreadable."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return cls()


@dataclass
class Decision:
    """What the bot does with a query."""

    action: Action
    hits: list[Hit]

    @property
    def confidence(self) -> float:
        """Cosine of the top hit (0 without hits)."""
        return self.hits[0].cosine if self.hits else 0.0


def decide(hits: list[Hit], thresholds: Thresholds) -> Decision:
    """Answer, suggest or admit uncertainty."""
    top = hits[0].cosine if hits else 0.0
    if top >= thresholds.answer:
        return Decision("answer", hits)
    if top >= thresholds.suggest:
        return Decision("suggest", hits[:3])
    return Decision("unsure", hits[:3])


def tune(
    in_conf: np.ndarray,
    in_top1: np.ndarray,
    oos_conf: np.ndarray,
    *,
    precision: float = 0.9,
    max_oos_accept: float = 0.1,
    source: str = "",
) -> Thresholds:
    """Thresholds from validation confidences (see the module docstring)."""
    conf = np.concatenate([in_conf, oos_conf])
    right = np.concatenate([in_top1.astype(bool), np.zeros(len(oos_conf), dtype=bool)])
    answer = float(conf.max()) + 1e-6 if len(conf) else Thresholds.answer
    for t in np.unique(conf):  # ascending: the lowest threshold that reaches the precision
        taken = conf >= t
        if right[taken].mean() >= precision:
            answer = float(t)
            break
    suggest = float(np.quantile(oos_conf, 1 - max_oos_accept)) if len(oos_conf) else Thresholds.suggest
    result = Thresholds(answer=round(answer, 4), suggest=round(min(suggest, answer), 4), tuned_on=source)
    log.info("FAQ thresholds %s", result)
    return result
