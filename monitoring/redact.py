"""Redaction of alert evidence: example messages go to Slack and webhooks, personal data does not.

Customer text is already masked where it enters (core/pii.py, with the shop's configured kinds);
alert examples are masked again with every built-in kind, and also lose links, @handles and long
numbers (order numbers), since a risk channel needs the wording, not the identifiers.
"""

from __future__ import annotations

import re

from core.pii import Redactor

_ALL = Redactor()
_EXTRA = [
    (re.compile(r"https?://\S+"), "[link]"),
    (re.compile(r"@\w{2,}"), "@[user]"),
    (re.compile(r"\b\d{5,}\b"), "[number]"),
]


def redact(text: str, limit: int = 300) -> str:
    """``text`` with personal data, links, handles and long numbers masked, cut to ``limit``."""
    text = _ALL.redact(text)
    for pattern, mask in _EXTRA:
        text = pattern.sub(mask, text)
    return text[:limit]
