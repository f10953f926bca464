"""An in-process stand-in for Rasa's HTTP API (REST channel, tracker, events, trigger_intent).

It behaves like the real bot in the ways the gateway depends on: "agent" opens a handoff in the
database and pauses (as ``action_request_handoff`` does), a paused conversation records but does
not answer, "furious" is very negative, and the ``EXTERNAL_handoff_*`` intents answer as the
domain's rules do. The real Rasa is exercised by the integration tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.handoff import open_handoff

CLOSING = {
    "EXTERNAL_handoff_resolved": "How happy are you with the help you got? (1 = not at all, 5 = very)",
    "EXTERNAL_handoff_returned": "You're back with the store assistant.",
    "EXTERNAL_handoff_cancelled": "No problem, I've taken you out of the queue.",
    "EXTERNAL_handoff_expired": "I'm sorry, all our colleagues are busy right now.",
}


@dataclass
class FakeRasa:
    """State of the fake: paused conversations, messages seen, and an on/off switch for outages."""

    engine: Engine
    paused: set[str] = field(default_factory=set)
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    agent_events: list[tuple[str, str]] = field(default_factory=list)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request
    down: bool = False

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering like Rasa."""
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        self.calls.append((request.method, path))
        if path == "/webhooks/rest/webhook":
            return httpx.Response(200, json=self._message(json.loads(request.content)))
        if path == "/webhooks/rest/turn":  # like bot/rasa_launch.py's: parse, maybe pause, then answer
            body = json.loads(request.content)
            sender, hold = body["sender"], body.get("hold_if_negative")
            parse = self._parse(body["message"])
            held = (
                hold is not None and parse["sentiment"]["label"] == "negative" and parse["sentiment"]["score"] >= hold
            )
            if held:
                self.paused.add(sender)
            messages = self._message(body)
            return httpx.Response(200, json={"messages": messages, "parse": self.latest[sender], "held": held})
        sender = unquote(path.split("/")[2])
        if path.endswith("/tracker"):
            return httpx.Response(
                200, json={"latest_message": self.latest.get(sender, {}), "paused": sender in self.paused}
            )
        if path.endswith("/tracker/events"):
            for event in json.loads(request.content):
                if event["event"] == "pause":
                    self.paused.add(sender)
                elif event["event"] == "resume":
                    self.paused.discard(sender)
                elif event["event"] == "bot":
                    self.agent_events.append((sender, event["text"]))
            return httpx.Response(200, json={})
        if path.endswith("/trigger_intent"):
            name = json.loads(request.content)["name"]
            if sender in self.paused:
                return httpx.Response(200, json={"messages": []})
            return httpx.Response(200, json={"messages": [{"recipient_id": sender, "text": CLOSING[name]}]})
        return httpx.Response(404, json={"message": "not found"})

    @staticmethod
    def _parse(text: str) -> dict[str, Any]:
        negative = "furious" in text.lower()
        return {
            "text": text,
            "intent": {"name": "contact_human_agent" if "agent" in text else "greet", "confidence": 0.9},
            "sentiment": {"label": "negative" if negative else "neutral", "score": 0.97 if negative else 0.8},
        }

    def _message(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        sender, text = body["sender"], body["message"]
        self.received.append((sender, text, body.get("metadata") or {}))
        self.latest[sender] = self._parse(text)
        if sender in self.paused:
            return []
        if "agent" in text.lower():
            with Session(self.engine) as s:
                channel = (body.get("metadata") or {}).get("channel", "rest")
                h = open_handoff(s, conversation_id=sender, reason="explicit_request", channel=channel,
                                 last_message=text)  # fmt: skip
                s.commit()
                handoff_id = h.id
            self.paused.add(sender)
            return [{"recipient_id": sender, "text": f"I've asked a colleague (request #{handoff_id}).",
                     "buttons": [{"title": "Cancel", "payload": "/handoff_cancel"}]}]  # fmt: skip
        if text.startswith("/csat"):
            return [{"recipient_id": sender, "text": "Thank you for the rating!"}]
        return [{"recipient_id": sender, "text": f"bot heard: {text}"}]
