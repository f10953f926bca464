"""The gateway's view of Rasa: its REST channel and the parts of its HTTP API a handoff needs."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bot.channels.errors import RasaUnavailable

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """What one customer message got from Rasa."""

    replies: list[dict[str, Any]]
    parse: dict[str, Any] = field(default_factory=dict)  # intent, entities, sentiment of the message
    held: bool = False  # the customer was very negative: paused before answering


class RasaClient:
    """Talks to Rasa (``--enable-api``) on one or several workers. Every failure is :class:`RasaUnavailable`.

    With several workers (sharing the tracker store and a Redis lock store) each conversation goes
    to the same worker, chosen by a hash of its id, and moves to the next one only when the
    connection is refused or cannot be opened: then the request never reached Rasa, so trying
    elsewhere cannot process a message twice. A worker that accepted the request and then failed
    is not retried (the message may have been processed); the customer is asked to try again.
    """

    def __init__(
        self, base_url: str, *, token: str = "", timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        """``base_url``: one URL or several separated by commas; ``token``: Rasa's (``RASA_TOKEN``), sent as its
        HTTP API wants it (``?token=``) and as a bearer token to the REST channel; ``transport`` lets tests answer
        in-process."""
        self.urls = [u.strip().rstrip("/") for u in base_url.split(",") if u.strip()]
        if not self.urls:
            raise ValueError("RasaClient needs at least one URL")
        self._api_params = {"token": token} if token else {}
        self._channel_headers = {"Authorization": f"Bearer {token}"} if token else {}
        # idle connections are dropped well before a server's keep-alive ends, so none is reused while closing
        self._http = httpx.Client(timeout=timeout, transport=transport, limits=httpx.Limits(keepalive_expiry=2.0))

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def _call(self, method: str, path: str, *, sender: str = "", api: bool = False, **kwargs: Any) -> Any:
        """One request, on the conversation's worker first; ``api``: Rasa's HTTP API (carries the token)."""
        if api and self._api_params:
            kwargs["params"] = {**kwargs.get("params", {}), **self._api_params}
        first = zlib.crc32(sender.encode()) % len(self.urls)
        failure: Exception | None = None
        for base in self.urls[first:] + self.urls[:first]:
            try:
                response = self._http.request(method, base + path, **kwargs)
                response.raise_for_status()
                return response.json()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached Rasa: the next worker
                log.warning("Rasa at %s refused %s %s (%s)", base, method, path, exc.__class__.__name__)
                failure = exc
            except (httpx.HTTPError, ValueError, RecursionError) as exc:  # RecursionError: absurdly deep JSON
                status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else ""
                log.warning("Rasa %s %s failed: %s %s", method, path, exc.__class__.__name__, status)  # no URL: token
                failure = exc
                break
        raise RasaUnavailable(f"the assistant is unavailable ({failure.__class__.__name__})") from failure

    @staticmethod
    def _conv(sender: str) -> str:
        return f"/conversations/{quote(sender, safe='')}"

    def turn(self, sender: str, text: str, metadata: dict[str, Any], hold_if_negative: float | None) -> Turn:
        """One customer message, one request: the bot's replies, the NLU's parse, and whether Rasa held back.

        With ``hold_if_negative``, a message the NLU calls negative with at least that confidence
        pauses the conversation before the bot answers (``held``: no replies; open a handoff).
        """
        body = {"sender": sender, "message": text, "metadata": metadata, "hold_if_negative": hold_if_negative}
        got = self._call("POST", "/webhooks/rest/turn", sender=sender, json=body, headers=self._channel_headers)
        got = got if isinstance(got, dict) else {}
        replies, parse = got.get("messages"), got.get("parse")
        return Turn(
            replies=[r for r in replies if isinstance(r, dict)] if isinstance(replies, list) else [],
            parse=parse if isinstance(parse, dict) else {},
            held=got.get("held") is True,
        )

    def resume(self, sender: str) -> None:
        """Let the bot answer again.

        The pause ended the bot's turn without its usual ``action_listen``; adding it puts the
        tracker back at a turn boundary, where the rules for the next user intent apply.
        """
        events = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        self._call("POST", self._conv(sender) + "/tracker/events", sender=sender, json=events, api=True)

    def record_agent_message(self, sender: str, text: str, agent: str) -> None:
        """Put a person's message into Rasa's history too, so the tracker holds the whole conversation."""
        event = {"event": "bot", "text": text, "metadata": {"agent": agent}}
        self._call("POST", self._conv(sender) + "/tracker/events", sender=sender, json=[event], api=True)

    def trigger(self, sender: str, intent: str) -> list[dict[str, Any]]:
        """Run the bot on an external intent (``EXTERNAL_handoff_resolved``...); the bot's replies."""
        result = self._call(
            "POST",
            self._conv(sender) + "/trigger_intent",
            sender=sender,
            json={"name": intent, "entities": {}},
            api=True,
        )
        return list(result.get("messages") or [])
