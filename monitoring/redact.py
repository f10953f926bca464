"""PII redaction for alert evidence: example messages go to Slack and webhooks, personal data does not."""

from __future__ import annotations

import re

_PATTERNS = [
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), "[card]"),
    (re.compile(r"(?<!\w)\+?\d[\d .()-]{7,}\d(?!\w)"), "[phone]"),
    (re.compile(r"https?://\S+"), "[link]"),
    (re.compile(r"@\w{2,}"), "@[user]"),
    (re.compile(r"\b\d{5,}\b"), "[number]"),
]


def redact(text: str, limit: int = 300) -> str:
    """``text`` with emails, card and phone numbers, links, handles and long numbers masked, cut to ``limit``."""
    for pattern, mask in _PATTERNS:
        text = pattern.sub(mask, text)
    return text[:limit]
