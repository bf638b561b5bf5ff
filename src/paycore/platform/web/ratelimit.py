"""Limits per key (an account, a client address), in process memory: token buckets for request
rates, and failure windows that shut a key out after too many failures (guessed secrets).

The state lives in the process that answers, so with N API instances behind a load balancer a
key gets up to N times the allowance; what a single instance lets through never exceeds it.
Each limiter remembers at most ``max_keys`` keys, forgetting the least recently seen first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class _RecentKeys(Generic[V]):
    """A bounded map of per-key state: writing a key makes it the most recent; past
    ``max_keys`` the least recently written key is dropped (it starts afresh)."""

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        return self._items.get(key)

    def put(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._max_keys:
            self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)


class RateLimiter:
    """Token buckets: each key may spend ``burst`` requests at once and then ``rate`` per
    second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: _RecentKeys[tuple[float, float]] = _RecentKeys(max_keys)  # tokens, at

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0.0 when allowed, else the seconds until one is free."""
        now = self._clock()
        tokens, at = self._buckets.get(key) or (self.burst, now)
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets.put(key, (tokens - 1.0, now))
            return 0.0
        self._buckets.put(key, (tokens, now))
        return (1.0 - tokens) / self.rate


class FailureLimit:
    """Failure windows: a key's first failure opens a window of ``window_seconds``; once it
    holds ``limit`` failures the key is refused until the window ends, whatever it offers
    then. Successes neither count nor reset anything."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be at least 1 and the window positive")
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._windows: _RecentKeys[tuple[float, int]] = _RecentKeys(max_keys)  # ends, failures

    def wait(self, key: str) -> float:
        """0.0 when ``key`` may try, else the seconds until its window ends."""
        window = self._windows.get(key)
        if window is None:
            return 0.0
        ends, failures = window
        left = ends - self._clock()
        if left <= 0:
            self._windows.drop(key)
            return 0.0
        return left if failures >= self.limit else 0.0

    def fail(self, key: str) -> None:
        """Count one failure of ``key``."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or window[0] <= now:
            self._windows.put(key, (now + self.window, 1))
        else:
            self._windows.put(key, (window[0], window[1] + 1))


def retry_after(wait_seconds: float) -> str:
    """A ``Retry-After`` header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait_seconds)))
