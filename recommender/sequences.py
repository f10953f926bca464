"""Per-customer item sequences and the leave-one-out split used to train and evaluate.

Items are dense integer ids ``1..n_items``; 0 is padding. A :class:`Vocabulary` maps the
shop's product ids to these ids and back.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recommender.errors import DataError


@dataclass
class Vocabulary:
    """Product id ↔ dense item id (1-based; 0 is padding)."""

    products: list[str]

    def __post_init__(self) -> None:
        self.index = {p: i + 1 for i, p in enumerate(self.products)}

    @property
    def n_items(self) -> int:
        """Number of known items."""
        return len(self.products)

    def encode(self, products: Iterable[str]) -> list[int]:
        """Dense ids of the known products, unknown ones skipped."""
        return [self.index[p] for p in products if p in self.index]

    def decode(self, item: int) -> str:
        """The product id of a dense item id."""
        return self.products[item - 1]


@dataclass
class Split:
    """Leave-one-out: the last item is the test target, the one before it the validation target.

    ``train[u]`` is ``seq[:-2]``; validation predicts ``seq[-2]`` from ``train[u]``; test predicts
    ``seq[-1]`` from ``seq[:-1]``. Users with fewer than 3 items are training-only.
    """

    train: list[list[int]]
    valid_targets: list[int]
    test_inputs: list[list[int]]
    test_targets: list[int]
    n_items: int


def read_pairs_file(path: Path) -> list[list[int]]:
    """Read a SASRec-format file (``user item`` per line, grouped by user, time-ordered).

    Raises:
        DataError: a line that is not two positive integers (the message names the line).
    """
    by_user: dict[int, list[int]] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
                raise DataError(f"{path}:{n}: expected 'user item' (positive integers), got {line.strip()!r}")
            by_user.setdefault(int(parts[0]), []).append(int(parts[1]))
    return [by_user[u] for u in sorted(by_user)]


def leave_one_out(sequences: list[list[int]], n_items: int | None = None) -> Split:
    """Split every sequence into train prefix, validation target and test target."""
    n = n_items or max(max(s) for s in sequences if s)
    train, valid, test_in, test_t = [], [], [], []
    for seq in sequences:
        if len(seq) < 3:
            train.append(seq)
            continue
        train.append(seq[:-2])
        valid.append(seq[-2])
        test_in.append(seq[:-1])
        test_t.append(seq[-1])
    return Split(train, valid, test_in, test_t, n)


def validation_view(split: Split) -> tuple[list[list[int]], list[int]]:
    """Inputs and targets of the validation step (users that have a test target)."""
    inputs = [s[:-1] for s in split.test_inputs]
    return inputs, split.valid_targets


def left_pad(sequences: list[list[int]], length: int) -> np.ndarray:
    """The last ``length`` items of each sequence, left-padded with 0: shape [B, length]."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for i, seq in enumerate(sequences):
        tail = seq[-length:]
        if tail:
            out[i, length - len(tail) :] = tail
    return out


def training_batches(
    sequences: list[list[int]], *, max_len: int, batch_size: int, seed: int, bucket: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled (inputs, targets) batches for next-item training, each [B, T] with T ≤ max_len.

    Inputs are ``seq[:-1]``, targets ``seq[1:]`` (0 where there is no target), cut to the last
    ``max_len`` positions. Each batch is only as wide as its longest history (the models mask
    the left padding, so the width changes nothing but the work). With ``bucket`` histories of
    similar length share a batch (less padding: the work halves on ML-1M); without, batches are
    drawn at random (SASRec+'s recipe). The batch order is shuffled either way.
    """
    rng = random.Random(seed)
    usable = [s for s in sequences if len(s) >= 2]
    rng.shuffle(usable)
    if bucket:
        usable.sort(key=len)
    chunks = [usable[i : i + batch_size] for i in range(0, len(usable), batch_size)]
    rng.shuffle(chunks)
    for chunk in chunks:
        width = min(max_len, max(len(s) for s in chunk) - 1)
        yield left_pad([s[:-1] for s in chunk], width), left_pad([s[1:] for s in chunk], width)
