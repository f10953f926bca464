"""Rule-based entities for exact patterns (price caps, order ids, invoice ids, emails), in Rasa's format."""

from __future__ import annotations

import re
from typing import Any

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "max_price",
        re.compile(
            r"\b(?:under|below|less than|cheaper than|at most|max(?:imum)?|up to|no more than)\s*"
            r"[$€£]?\s*(\d{1,6}(?:[.,]\d{1,2})?)(?!\d)",
            re.IGNORECASE,
        ),
    ),
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("invoice_id", re.compile(r"\bINV-?\d{3,12}\b", re.IGNORECASE)),
    ("order_id", re.compile(r"(?<![\w@.-])#?(\d{5,15})(?![\w@-]|\.\d)")),
]


_NOT_AN_ORDER = re.compile(r"\b(invoice|bill|receipt|phone|call|tel)\b\W*(no\.?|number|#)?\W*$", re.IGNORECASE)


def extract(text: str) -> list[dict[str, Any]]:
    """Find exact-pattern entities; spans never overlap (earlier patterns win).

    A bare number right after "invoice", "bill", "receipt" or "phone" is not taken as an
    order id (the learned entity head decides what it is).
    """
    found: list[dict[str, Any]] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            group = 1 if pattern.groups else 0
            start, end = m.span(group)
            if any(s < end and start < e for s, e in taken):
                continue
            if name == "order_id" and _NOT_AN_ORDER.search(text[max(0, m.start() - 25) : m.start()]):
                continue
            taken.append((start, end))
            found.append(
                {
                    "entity": name,
                    "value": m.group(group),
                    "start": start,
                    "end": end,
                    "confidence_entity": 1.0,
                    "extractor": "RegexRules",
                }
            )
    return sorted(found, key=lambda e: e["start"])


# What a value of each learned type must look like: a wrong slot fill is worse than none.
_FORMATS: dict[str, re.Pattern[str]] = {
    "order_id": re.compile(r"#?\d{5,15}"),
    "invoice_id": re.compile(r"INV-?\d{3,12}", re.IGNORECASE),
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "max_price": re.compile(r"\d{1,6}(?:[.,]\d{1,2})?"),
}


def plausible(span: dict[str, Any], threshold: float) -> bool:
    """Whether a learned span may be served: a known type, its format, and a confidence of at least ``threshold``.

    Types without a format (names, cities, amounts of the template data) are never served: the
    bot has no slot for them, and on real messages they were mostly invented ("the", "rs", ".").
    """
    fmt = _FORMATS.get(str(span.get("entity")))
    value = str(span.get("value", "")).strip()
    return fmt is not None and fmt.fullmatch(value) is not None and float(span["confidence_entity"]) >= threshold
