"""Concurrent loads of the same key share one call: a cache that misses under load (cold
after a restart, or an entry just expired) costs one query per key, not one per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """``await load()``, or, when a load of ``key`` is already under way, its result (or
        its error). A caller that is cancelled does not cancel the load the others wait for."""
        running = self._loading.get(key)
        if running is None:
            running = asyncio.ensure_future(load())
            self._loading[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(running)

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        self._loading.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: every waiter may have gone (cancelled)
