"""Opportunistic micro-batching: concurrent parse requests share one forward pass.

Nothing waits for a batch to fill: a request that arrives when the model is idle runs at
once, alone; requests that arrive while a batch is running queue up and run together in the
next one. Idle latency is unchanged and throughput under load rises with the batch size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class MicroBatcher:
    """Feeds queued texts to ``predict_batch`` (run in a worker thread), one batch at a time."""

    def __init__(self, predict_batch: Callable[[list[str]], list[dict[str, Any]]], max_batch: int = 32):
        self.predict_batch = predict_batch
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[str, asyncio.Future[dict[str, Any]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop; queued requests fail with CancelledError."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait()[1].cancel()

    async def submit(self, text: str) -> dict[str, Any]:
        """Parse one text; resolves when its batch has run."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(t, f) for t, f in batch if not f.done()]  # a client may have gone away
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self.predict_batch, [t for t, _ in live])
            except Exception as exc:  # handed to every waiting request, never lost
                log.exception("batch of %d failed", len(live))
                for _, f in live:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for (_, f), r in zip(live, results, strict=True):
                if not f.done():
                    f.set_result(r)
