"""Product and brand names from the shop's own catalog, found in messages by exact (case-free) match.

A learned tagger invents names on text unlike its training data ("Michael Kors" → a person "rs");
a catalog knows what the shop sells. Terms: each product's type (the last part of its category,
"Camping | sleeping bag" → "sleeping bag") and name as entity ``product`` (value: the category),
and each brand (a ``brand`` column, when the catalog has one) as entity ``brand``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.csvfile import read_rows
from nlu.errors import DataError

MIN_TERM_CHARS = 3


@dataclass(frozen=True)
class Term:
    """One catalog phrase and what it stands for."""

    entity: str  # product | brand
    value: str  # product: the full category; brand: the brand as the catalog spells it


class Gazetteer:
    """Longest-match lookup of catalog phrases on word boundaries."""

    def __init__(self, terms: dict[str, Term]):
        self.terms = {k.lower(): v for k, v in terms.items() if len(k) >= MIN_TERM_CHARS}
        alternatives = sorted(self.terms, key=len, reverse=True)  # longest first: "sleeping bag liner" wins
        self._pattern = (
            re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in alternatives) + r")s?(?!\w)", re.IGNORECASE)
            if alternatives
            else None
        )

    @classmethod
    def from_catalog_csv(cls, path: Path) -> Gazetteer:
        """Terms of a catalog CSV with ``name`` and ``category`` columns (and optionally ``brand``).

        Raises:
            DataError: unreadable file or missing columns.
        """
        terms: dict[str, Term] = {}
        for _, row in read_rows(path, ("name", "category"), DataError):
            category = (row["category"] or "").strip()
            kind = category.split("|")[-1].strip()
            for phrase in (kind, (row["name"] or "").strip()):
                if phrase:
                    terms.setdefault(phrase, Term("product", category))
            if brand := (row.get("brand") or "").strip():
                terms.setdefault(brand, Term("brand", brand))
        return cls(terms)

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Catalog entities in ``text``, in Rasa's format."""
        if self._pattern is None:
            return []
        out = []
        for m in self._pattern.finditer(text):
            term = self.terms[m.group(1).lower()]
            out.append({"entity": term.entity, "value": term.value, "start": m.start(1), "end": m.end(1),
                        "confidence_entity": 1.0, "extractor": "Catalog"})  # fmt: skip
        return out
