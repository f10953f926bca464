"""What a customer gets first: each labelled message opens its own conversation on the real stack.

Protocol: one message per conversation (a new sender id each), sent to Rasa's REST channel; the
conversation's tracker (Rasa's HTTP API) then says which action answered and what it said. Outcomes:

- ``right``: the action the bot's rules run for the gold intent; for the FAQ's intents (and
  FAQ-only topics) an answer from an entry written for that intent (or that entry); for
  out-of-scope messages, an honest "I don't know".
- ``clarify_right``: a "did you mean" choice whose buttons include a right entry.
- ``clarify_other``: a choice without a right entry (for out-of-scope messages: not a confident answer).
- ``unknown``: "I don't know" (or Rasa's own fallback) for a message the bot should have handled.
- ``wrong``: any other reply: a wrong FAQ answer, another intent's action, or, for out-of-scope
  messages, any confident answer.
``inform`` messages without an order number have no first reply to expect in a new conversation
and are left out (``skipped``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from nlu.evalset import Labelled

OUTCOMES = ("right", "clarify_right", "clarify_other", "unknown", "wrong")
_FROM_FAQ = re.compile(r"\(From our FAQ: “(?P<question>.+?)”\)\s*$", re.S)
_UNKNOWN = ("I don't know the answer", "I can't answer that either")
_CHOOSE = re.compile(r'"faq_id"\s*:\s*"(?P<id>[^"]+)"')


@dataclass(frozen=True)
class BotFacts:
    """What the bot's files say: the first action per intent, and the FAQ entries."""

    action_for: dict[str, str]  # intent → the action its rule runs first
    entry_by_question: dict[str, str]  # FAQ question → entry id
    entries_for: dict[str, set[str]]  # intent → FAQ entry ids written for it

    @classmethod
    def load(cls, rules: Path, kb: Path) -> BotFacts:
        """Read ``bot/data/rules.yml`` and the FAQ knowledge base."""
        action_for: dict[str, str] = {}
        for rule in yaml.safe_load(rules.read_text())["rules"]:
            steps = rule.get("steps") or []
            if len(steps) >= 2 and "intent" in steps[0] and "action" in steps[1] and "condition" not in rule:
                action_for.setdefault(steps[0]["intent"], steps[1]["action"])
        entries = yaml.safe_load(kb.read_text())["entries"]
        entries_for: dict[str, set[str]] = {}
        for e in entries:
            for intent in e.get("intents") or []:
                entries_for.setdefault(intent, set()).add(e["id"])
        return cls(action_for, {e["question"]: e["id"] for e in entries}, entries_for)


def _turn(events: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """Actions and bot messages after the last user message."""
    last = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    rest = events[last + 1 :]
    actions = [str(e.get("name")) for e in rest if e.get("event") == "action" and e.get("name") != "action_listen"]
    return actions, [e for e in rest if e.get("event") == "bot"]


def classify(item: Labelled, events: list[dict[str, Any]], facts: BotFacts) -> str:
    """The outcome (see the module docstring) of the tracker ``events`` of a one-message conversation."""
    if item.intent == "inform" and not any(e.entity == "order_id" for e in item.entities):
        return "skipped"
    actions, bots = _turn(events)
    first = actions[0] if actions else ""
    right_entries = {item.faq} if item.faq else facts.entries_for.get(item.intent or "", set())
    if first == "action_answer_faq":
        for bot in bots:
            text = str(bot.get("text") or "")
            if m := _FROM_FAQ.search(text):
                entry = facts.entry_by_question.get(m["question"])
                return "right" if entry in right_entries else "wrong"
            buttons = (bot.get("data") or {}).get("buttons") or []
            offered = {m["id"] for b in buttons if (m := _CHOOSE.search(str(b.get("payload", ""))))}
            if offered:
                return "clarify_right" if offered & right_entries else "clarify_other"
            if any(s in text for s in _UNKNOWN):
                return "right" if item.kind == "oos" else "unknown"
        return "wrong"
    if first in ("action_default_fallback", ""):
        return "right" if item.kind == "oos" else "unknown"
    return "right" if item.intent and facts.action_for.get(item.intent) == first else "wrong"


def run(rasa_url: str, token: str, items: Iterable[Labelled], facts: BotFacts) -> list[str]:
    """Send each message in a conversation of its own; the outcome of each."""
    outcomes = []
    run_id = uuid.uuid4().hex[:8]
    with httpx.Client(timeout=60) as client:
        for n, item in enumerate(items):
            sender = f"first-reply-{run_id}-{n}"
            r = client.post(
                f"{rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": item.text},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
            tracker = client.get(f"{rasa_url}/conversations/{sender}/tracker", params={"token": token})
            tracker.raise_for_status()
            outcomes.append(classify(item, tracker.json().get("events") or [], facts))
    return outcomes


def summary(items: list[Labelled], outcomes: list[str]) -> dict[str, Any]:
    """Shares of each outcome, for in-domain messages (an intent or an FAQ topic) and out-of-scope ones."""
    out: dict[str, Any] = {}
    for name, kinds in (("in_domain", {"intent", "faq"}), ("out_of_scope", {"oos"})):
        got = [o for i, o in zip(items, outcomes, strict=True) if i.kind in kinds and o != "skipped"]
        counts = Counter(got)
        out[name] = {"n": len(got), **{o: round(counts[o] / len(got), 4) if got else 0.0 for o in OUTCOMES}}
    return out


def dump(path: Path, items: list[Labelled], outcomes: list[str]) -> None:
    """Every message with its outcome, for reading the failures."""
    rows = [{"text": i.text, "gold": i.label, "outcome": o} for i, o in zip(items, outcomes, strict=True)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
