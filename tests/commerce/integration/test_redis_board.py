"""The Redis analytics board against a real Redis: idempotent counts, rankings, TTL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from paycore.commerce.analytics.board import KEEP, MemoryBoard, RedisBoard
from paycore.commerce.domain import Order, OrderLine
from paycore.platform.ids import uuid7


@pytest.fixture
async def redis(redis_server: object) -> AsyncIterator[Redis]:
    client = Redis.from_url(str(redis_server.url))  # type: ignore[attr-defined]
    yield client
    await client.aclose()


def orders(count: int) -> list[Order]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        Order(
            n,
            n % 7 + 1,
            (OrderLine(f"p{n % 5}", n % 3 + 1, 100 + n), OrderLine("common", 1, 50)),
            start + timedelta(seconds=n),
        )
        for n in range(1, count + 1)
    ]


async def test_redis_board_counts_each_order_once_and_matches_the_memory_board(
    redis: Redis,
) -> None:
    board = RedisBoard(redis, ttl_seconds=3600, prefix=f"t{uuid7()}:")
    reference = MemoryBoard()
    sample = orders(KEEP + 50)
    results: list[bool] = []
    doubled = sample + sample
    for start in range(0, len(doubled), 40):  # concurrent, within the client's pool
        results += await asyncio.gather(*(board.record(o) for o in doubled[start : start + 40]))
    assert sum(results) == len(sample)  # the repeats all answered False
    for o in sample:
        await reference.record(o)
    got, want = await board.snapshot(10), await reference.snapshot(10)
    assert got == want
    assert sum(e.score for e in (await board.snapshot(100))["customersByOrders"]) == len(sample)


async def test_redis_board_keys_expire_after_the_ttl(redis: Redis) -> None:
    prefix = f"t{uuid7()}:"
    board = RedisBoard(redis, ttl_seconds=1, prefix=prefix)
    await board.record(orders(1)[0])
    keys = await redis.keys(prefix + "*")
    assert len(keys) == 7
    assert all(0 < ttl <= 1 for ttl in [await redis.ttl(k) for k in keys])
    await asyncio.sleep(1.5)
    assert await redis.keys(prefix + "*") == []
