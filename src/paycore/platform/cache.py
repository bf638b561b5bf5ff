"""A small TTL cache: Redis when a URL is configured, an in-process dictionary otherwise."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class RedisCache:
    def __init__(self, client: Redis, *, prefix: str = "paycore:") -> None:
        self._redis = client
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        if value is None:
            return None
        return value if isinstance(value, bytes) else value.encode()

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._redis.set(self._prefix + key, value, ex=ttl_seconds)

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


class MemoryCache:
    """Per-process; expired entries are dropped when read, and the oldest beyond ``max_items``."""

    def __init__(self, *, max_items: int = 100_000) -> None:
        self._items: dict[str, tuple[float, bytes]] = {}
        self._max = max_items

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[key]
            return None
        return item[1]

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._items.pop(key, None)
        self._items[key] = (time.monotonic() + ttl_seconds, value)
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)

    async def close(self) -> None:
        self._items.clear()


def create_cache(redis_url: str) -> Cache:
    if redis_url:
        return RedisCache(Redis.from_url(redis_url))
    return MemoryCache()
