"""The gateway's view of Rasa: its REST channel and the parts of its HTTP API a handoff needs."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx

from bot.channels.errors import RasaUnavailable

log = logging.getLogger(__name__)


class RasaClient:
    """Talks to one Rasa server on loopback (``--enable-api``). Every failure is :class:`RasaUnavailable`."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        """``transport`` lets tests answer in-process."""
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Rasa %s %s failed: %s", method, path, exc)
            raise RasaUnavailable(f"the assistant is unavailable ({exc.__class__.__name__})") from exc

    @staticmethod
    def _conv(sender: str) -> str:
        return f"/conversations/{quote(sender, safe='')}"

    def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """One customer message through the REST channel; the bot's replies (none while paused)."""
        body = {"sender": sender, "message": text, "metadata": metadata}
        replies = self._call("POST", "/webhooks/rest/webhook", json=body)
        return replies if isinstance(replies, list) else []

    def latest_parse(self, sender: str) -> dict[str, Any]:
        """The NLU result of the conversation's latest user message (intent, sentiment, entities)."""
        state = self._call("GET", self._conv(sender) + "/tracker", params={"include_events": "NONE"})
        return dict(state.get("latest_message") or {})

    def pause(self, sender: str) -> None:
        """Stop the bot from answering (Rasa still records and parses each message)."""
        self._call("POST", self._conv(sender) + "/tracker/events", json=[{"event": "pause"}])

    def resume(self, sender: str) -> None:
        """Let the bot answer again.

        The pause ended the bot's turn without its usual ``action_listen``; adding it puts the
        tracker back at a turn boundary, where the rules for the next user intent apply.
        """
        events = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        self._call("POST", self._conv(sender) + "/tracker/events", json=events)

    def record_agent_message(self, sender: str, text: str, agent: str) -> None:
        """Put a person's message into Rasa's history too, so the tracker holds the whole conversation."""
        event = {"event": "bot", "text": text, "metadata": {"agent": agent}}
        self._call("POST", self._conv(sender) + "/tracker/events", json=[event])

    def trigger(self, sender: str, intent: str) -> list[dict[str, Any]]:
        """Run the bot on an external intent (``EXTERNAL_handoff_resolved``...); the bot's replies."""
        result = self._call("POST", self._conv(sender) + "/trigger_intent", json={"name": intent, "entities": {}})
        return list(result.get("messages") or [])
