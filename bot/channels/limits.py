"""Abuse limits of the gateway: request bodies, and request rates per client address and per customer.

- :class:`BodyLimit` (ASGI middleware) answers 413 before the body is read when Content-Length is
  too big, and stops reading a chunked upload as soon as it passes the limit.
- :class:`RateLimiter` is a set of token buckets (``per_minute`` refill, ``burst`` capacity) kept
  in the gateway process; a request over its rate gets 429 with ``Retry-After``. Several gateway
  processes each keep their own buckets, so the effective limit is per process (see
  docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from bot.channels.errors import ChannelError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RateLimited(ChannelError):
    """Too many requests from one client or customer; ``retry_after`` seconds until the next is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        """``message`` for the client, ``retry_after`` seconds to wait."""
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rate:
    """``per_minute`` requests on average, up to ``burst`` at once; ``per_minute`` 0 = unlimited."""

    per_minute: float
    burst: int

    @property
    def off(self) -> bool:
        """Whether this rate is unlimited."""
        return self.per_minute <= 0


UNLIMITED = Rate(0, 0)


class RateLimiter:
    """Token buckets by key, thread-safe, holding at most ``max_keys`` (the least recently used go first)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` lets tests move time."""
        self.max_keys, self.clock = max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def wait_needed(self, key: str, rate: Rate) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        if rate.off:
            return 0.0
        now, per_second = self.clock(), rate.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(rate.burst), now))
            tokens = min(float(rate.burst), tokens + (now - last) * per_second)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / per_second
            if not wait:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait

    def check(self, key: str, rate: Rate, what: str) -> None:
        """Raise :class:`RateLimited` naming ``what`` when ``key`` is over ``rate``."""
        wait = self.wait_needed(key, rate)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(f"too many {what}; please wait {seconds} s and try again", seconds)


class BodyLimit:
    """ASGI middleware: request bodies over ``max_bytes`` get 413 without being read to the end."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        """Wrap ``app``; ``max_bytes`` 0 = no limit."""
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what actually arrives."""
        if scope["type"] != "http" or not self.max_bytes:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send)
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
            if seen > self.max_bytes:
                await self._reject(send)
                return
        body = b"".join(chunks)
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
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
