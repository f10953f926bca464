"""Abuse limits of the gateway: request rates per client address and per customer.

- request bodies: see :class:`core.asgi.BodyLimit`;
- :class:`RateLimiter` is a set of token buckets (``per_minute`` refill, ``burst`` capacity) kept
  in the gateway process; a request over its rate gets 429 with ``Retry-After``. Several gateway
  processes each keep their own buckets, so the effective limit is per process (see
  docs/RELIABILITY.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.channels.errors import ChannelError


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
