"""ASGI middleware shared by the HTTP services (gateway, NLU service)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from core.http_errors import json_too_deep

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Request bodies over ``max_bytes`` get 413 without being read to the end; JSON nested too deep gets 422.

    A declared Content-Length over the limit is refused at once; a chunked body is read up to the
    limit and refused as soon as it passes it (the services' bodies are small, so reading them
    before the app does costs nothing). Pure ASGI: Starlette's ``@app.middleware("http")`` costs
    about a millisecond per request; this does not.

    With ``max_json_depth``, a JSON body (or one without a content type, which FastAPI reads as
    JSON) whose arrays and objects nest deeper than that is refused with 422 before anything
    parses it (a bracket scan, no recursion), except under ``depth_exempt`` path prefixes (Slack:
    its signature is checked first, and it answers 401 to an unsigned request whatever the body).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, *, max_json_depth: int = 0, depth_exempt: tuple[str, ...] = ()
    ) -> None:
        """Wrap ``app``; ``max_bytes`` 0 = no size limit, ``max_json_depth`` 0 = no depth limit."""
        self.app, self.max_bytes = app, max_bytes
        self.max_json_depth, self.depth_exempt = max_json_depth, depth_exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what actually arrives, then how deep JSON nests."""
        if scope["type"] != "http" or not (self.max_bytes or self.max_json_depth):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if self.max_bytes and declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send, 413, f"request body larger than {self.max_bytes} bytes", close=True)
            return
        chunks, seen, more = [], 0, True
        while more:  # bodies here are small: read (at most the limit) before the app sees any of it
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            more = message.get("more_body", False)
            if self.max_bytes and seen > self.max_bytes:
                await self._reject(send, 413, f"request body larger than {self.max_bytes} bytes", close=True)
                return
        body = b"".join(chunks)
        if self._too_deep(scope, headers.get(b"content-type", b""), body):
            await self._reject(send, 422, f"the JSON body nests deeper than {self.max_json_depth} levels")
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)

    def _too_deep(self, scope: Scope, content_type: bytes, body: bytes) -> bool:
        if not self.max_json_depth or not body or str(scope.get("path", "")).startswith(self.depth_exempt):
            return False
        kind = content_type.split(b";")[0].strip().lower()
        if kind and kind != b"application/json" and not kind.endswith(b"+json"):
            return False  # forms, text: not read as JSON
        return json_too_deep(body, self.max_json_depth)

    async def _reject(self, send: Send, status: int, detail: str, *, close: bool = False) -> None:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if close:  # the rest of the body was never read: this connection cannot carry another request
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive callable that gives ``messages`` first, then defers to ``then`` (disconnects)."""
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
