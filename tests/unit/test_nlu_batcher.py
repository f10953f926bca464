"""Micro-batching: concurrent requests share batches, answers go to the right caller, errors reach everyone."""

import asyncio
import threading
import time

import pytest

from nlu.batcher import MicroBatcher


def test_concurrent_requests_are_batched_and_answered_in_order() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def predict(texts: list[str]) -> list[dict]:
        sizes.append(len(texts))
        gate.wait(1)  # the first batch is slow, so the others queue up behind it
        return [{"text": t, "n": len(t)} for t in texts]

    async def main() -> list[dict]:
        b = MicroBatcher(predict, max_batch=8)
        b.start()
        first = asyncio.create_task(b.submit("a"))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(b.submit("x" * i)) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        gate.set()
        out = await asyncio.gather(first, *rest)
        await b.stop()
        return out

    out = asyncio.run(main())
    assert [r["n"] for r in out] == [1, *range(1, 11)]
    assert sizes[0] == 1 and max(sizes[1:]) == 8 and sum(sizes) == 11


def test_a_failing_batch_fails_its_requests_only() -> None:
    def predict(texts: list[str]) -> list[dict]:
        if "boom" in texts:
            raise RuntimeError("model crashed")
        return [{"text": t} for t in texts]

    async def main() -> None:
        b = MicroBatcher(predict)
        b.start()
        with pytest.raises(RuntimeError, match="model crashed"):
            await b.submit("boom")
        assert (await b.submit("fine"))["text"] == "fine"  # the loop survived
        await b.stop()

    asyncio.run(main())


def test_idle_request_is_not_delayed() -> None:
    async def main() -> float:
        b = MicroBatcher(lambda texts: [{} for _ in texts])
        b.start()
        await b.submit("warm")
        started = time.perf_counter()
        await b.submit("x")
        await b.stop()
        return time.perf_counter() - started

    assert asyncio.run(main()) < 0.05
