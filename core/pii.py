"""Personal data redaction: what a customer types is masked before it is stored, relayed or logged.

One :class:`Redactor` runs where customer text enters the system (the channels gateway), so the
transcript, Rasa's tracker store, the monitoring turns, alerts, exports and logs only ever see
the masked text. The kinds are configurable (``PII_REDACT``); a shop adds its own patterns
(``PII_PATTERNS``, a JSON object ``{"name": "regex"}``), each masked as ``[name]``.

What the built-in kinds catch (tests/data/pii_corpus.yml lists examples either way):

- ``email``: ``name@domain.tld``;
- ``card``: 13-19 digits not starting with 0, spaces or dashes allowed (a mistyped card number
  is still one);
- ``phone``: 9-15 digits with an optional ``+``, spaces, dots, dashes or brackets (order
  numbers, dates, prices and quantities have fewer digits or another shape and stay);
- ``iban``: a country code, two check digits and 11-30 letters or digits;
- ``address``: a street line (house number, up to four words, a street word such as Street,
  Ave, Road, Lane, Straße) with an optional flat number, and UK postcodes.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_KINDS = ("email", "iban", "card", "phone", "address")  # also the order rules apply in
# Street words matched in any case, and ones so common in other senses ("on the way") that only the
# capitalised form counts.
_STREET_ANY_CASE = "street|st|avenue|ave|road|rd|lane|ln|boulevard|blvd|parkway|pkwy|highway|hwy|strasse|straße|str"
_STREET_CAPITALISED = "Drive|Dr|Way|Place|Pl|Close|Court|Ct|Square|Sq|Terrace|Crescent"
_BUILTIN: dict[str, list[str]] = {
    "email": [r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"],
    "iban": [r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"],
    "card": [r"(?<![\w-])[1-9](?:[ -]?\d){12,18}(?![\w-])"],
    "phone": [r"(?<![\w+])\+?\(?\d[\d .()/-]{7,}\d(?!\w)"],
    "address": [
        rf"\b\d{{1,5}}[a-zA-Z]?(?:[ ,]+[A-Za-zÀ-ÿ'.-]+){{1,4}}\s(?:(?i:{_STREET_ANY_CASE})|{_STREET_CAPITALISED})\b\.?"
        r"(?:\s[NSEW]{1,2}\b)?"
        r"(?:,?\s(?i:apt|apartment|flat|unit|suite|#)\.?\s?\w+)?",
        r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b",
    ],
}


class BadPattern(ValueError):
    """A configured redaction kind or pattern is unknown or not a valid regular expression."""


@dataclass(frozen=True)
class Finding:
    """One piece of personal data found: its kind and where it was."""

    kind: str
    start: int
    end: int


class Redactor:
    """Masks the configured kinds of personal data as ``[kind]``."""

    def __init__(self, kinds: Iterable[str] = DEFAULT_KINDS, extra: Mapping[str, str] | None = None) -> None:
        """``kinds``: built-in kinds to mask, in order; ``extra``: the shop's own ``{name: regex}``."""
        self.rules: list[tuple[str, re.Pattern[str]]] = []
        wanted = set(kinds)
        if unknown := wanted - set(_BUILTIN):
            raise BadPattern(f"unknown PII kind {sorted(unknown)[0]!r}; known: {', '.join(_BUILTIN)}")
        for kind in [k for k in _BUILTIN if k in wanted]:  # fixed precedence: an IBAN is not a card
            self.rules += [(kind, re.compile(p)) for p in _BUILTIN[kind]]
        for name, pattern in (extra or {}).items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name):
                raise BadPattern(f"PII pattern name {name!r}: use lower-case letters, digits and _")
            try:
                self.rules.append((name, re.compile(pattern)))
            except re.error as e:
                raise BadPattern(f"PII pattern {name!r} is not a valid regular expression: {e}") from e

    def findings(self, text: str) -> list[Finding]:
        """What :meth:`redact` would mask, earlier rules first, without overlaps."""
        taken: list[Finding] = []
        for kind, pattern in self.rules:
            for m in pattern.finditer(text):
                if kind == "phone" and not 9 <= sum(c.isdigit() for c in m.group()) <= 15:
                    continue
                if any(m.start() < f.end and f.start < m.end() for f in taken):
                    continue
                taken.append(Finding(kind, m.start(), m.end()))
        return sorted(taken, key=lambda f: f.start)

    def redact(self, text: str) -> str:
        """``text`` with every finding replaced by ``[kind]``."""
        if not text or not self.rules:
            return text
        out, last = [], 0
        for f in self.findings(text):
            out += [text[last : f.start], f"[{f.kind}]"]
            last = f.end
        return "".join([*out, text[last:]])


def build_redactor(kinds: str, patterns: str = "") -> Redactor:
    """A redactor from the settings' strings: comma-separated kinds, and a JSON object of extra patterns."""
    try:
        extra = json.loads(patterns) if patterns.strip() else {}
    except json.JSONDecodeError as e:
        raise BadPattern(f"PII_PATTERNS must be a JSON object of name: regex ({e})") from e
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise BadPattern('PII_PATTERNS must be a JSON object of name: regex, e.g. {"postcode": "\\\\d{5}"}')
    return Redactor([k.strip() for k in kinds.split(",") if k.strip()], extra)


class RedactingFilter(logging.Filter):
    """A logging filter that masks personal data in every record's final message."""

    def __init__(self, redactor: Redactor) -> None:
        """Mask with ``redactor``."""
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted rendering (arguments folded in)."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        masked = self.redactor.redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s", level: int = logging.INFO) -> None:
    """The services' logging: ``fmt`` on stderr, personal data masked in every record (all kinds)."""
    logging.basicConfig(level=level, format=fmt)
    masker = RedactingFilter(Redactor())
    for handler in logging.getLogger().handlers:
        handler.addFilter(masker)
