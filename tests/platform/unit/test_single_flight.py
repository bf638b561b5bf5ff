"""Shared loads: concurrent misses of one key make one call, wherever paycore caches a read
on a hot path (the order catalog, merchant secrets)."""

from __future__ import annotations

import asyncio

import pytest

from paycore.platform.single_flight import SingleFlight


class Calls:
    def __init__(self, value: str = "v", fail: bool = False) -> None:
        self.count, self.value, self.fail = 0, value, fail
        self.release = asyncio.Event()

    async def __call__(self) -> str:
        self.count += 1
        await self.release.wait()
        if self.fail:
            raise ConnectionError("database down")
        return self.value


async def test_concurrent_loads_of_a_key_share_one_call() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    calls, other = Calls("a"), Calls("b")
    waiting = [asyncio.ensure_future(flight.load("k", calls)) for _ in range(20)]
    waiting.append(asyncio.ensure_future(flight.load("other", other)))
    await asyncio.sleep(0)
    calls.release.set()
    other.release.set()
    assert await asyncio.gather(*waiting) == ["a"] * 20 + ["b"]
    assert (calls.count, other.count) == (1, 1)
    await flight.load("k", calls)  # the load is over: a later miss loads again
    assert calls.count == 2


async def test_an_error_reaches_every_waiter_and_the_next_call_loads_again() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    failing = Calls(fail=True)
    waiting = [asyncio.ensure_future(flight.load("k", failing)) for _ in range(5)]
    await asyncio.sleep(0)
    failing.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert failing.count == 1
    working = Calls("fine")
    working.release.set()
    assert await flight.load("k", working) == "fine"


async def test_a_cancelled_waiter_does_not_cancel_the_load_of_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    calls = Calls("a")
    first = asyncio.ensure_future(flight.load("k", calls))
    second = asyncio.ensure_future(flight.load("k", calls))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    calls.release.set()
    assert await second == "a"
    assert calls.count == 1
