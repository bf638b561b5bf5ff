"""The TTL cache: Redis when configured, in-process otherwise; same behaviour from both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from paycore.platform.cache import Cache, MemoryCache, create_cache
from paycore.platform.ids import uuid7
from servers import Server


@pytest.fixture(params=["redis", "memory"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "redis":
        server: Server = request.getfixturevalue("redis_server")
        found = create_cache(server.url)
    else:
        found = create_cache("")
    yield found
    await found.close()


async def test_set_get_delete_and_expiry(cache: Cache) -> None:
    key = f"k-{uuid7()}"
    assert await cache.get(key) is None
    await cache.set(key, b"value", ttl_seconds=1)
    assert await cache.get(key) == b"value"
    await cache.set(key, b"newer", ttl_seconds=60)
    assert await cache.get(key) == b"newer"
    await cache.delete(key)
    assert await cache.get(key) is None
    await cache.set(key, b"short", ttl_seconds=1)
    await asyncio.sleep(1.3)
    assert await cache.get(key) is None


async def test_the_memory_cache_forgets_the_oldest_beyond_its_size() -> None:
    cache = MemoryCache(max_items=3)
    for n in range(5):
        await cache.set(str(n), b"x", ttl_seconds=60)
    assert [await cache.get(str(n)) for n in range(5)] == [None, None, b"x", b"x", b"x"]
