"""The quote cache without a server: in memory, a quote is kept until its ``valid_until``
(excluded) and the oldest goes when it is full; over Redis, the time to live is what is left
of the quote's validity, and Redis failing or holding a value it cannot read is a miss, never
an error. (Redis itself: tests/banking/integration/test_insurance_flow.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from paycore.banking.insurance.cache import MemoryQuoteCache, RedisQuoteCache, key_of
from paycore.banking.insurance.store import QuoteRecord

NOW = datetime(2027, 1, 4, 15, tzinfo=UTC)


def record(quote_id: str = "q1", valid_until: datetime = NOW + timedelta(days=7)) -> QuoteRecord:
    return QuoteRecord(
        id=quote_id,
        customer_id="c1",
        insured_name="Ana Souza",
        insured_cpf="***.982.247-**",
        vehicle_brand="Fiat",
        vehicle_model="Argo",
        vehicle_year=2023,
        vehicle_plate="ABC1D23",
        insured_amount=8_000_000,
        deductible=400_000,
        premiums={"collision": 280_000},
        base=280_000,
        deductible_discount=14_000,
        net_base=266_000,
        tax=13_300,
        interest=5_320,
        total=284_620,
        payment_method="pix",
        quoted_at=valid_until - timedelta(days=7),
        valid_until=valid_until,
    )


async def test_memory_keeps_a_quote_until_its_validity_is_over() -> None:
    now = [NOW]
    cache = MemoryQuoteCache(clock=lambda: now[0])
    kept = record()
    await cache.put(kept)
    assert await cache.get("q1") == kept
    assert await cache.get("q2") is None
    now[0] = kept.valid_until - timedelta(microseconds=1)
    assert await cache.get("q1") == kept
    now[0] = kept.valid_until
    assert await cache.get("q1") is None
    assert len(cache) == 0
    await cache.put(kept)  # it holds no more: not kept
    assert len(cache) == 0


async def test_memory_drops_the_expired_and_the_oldest_when_full() -> None:
    now = [NOW]
    cache = MemoryQuoteCache(clock=lambda: now[0], entries=3)
    await cache.put(record("old", NOW + timedelta(seconds=1)))
    now[0] += timedelta(seconds=2)
    await cache.put(record("a"))  # the expired one goes as the next is put
    assert len(cache) == 1
    for name in ("b", "c", "d"):
        await cache.put(record(name))
    assert [await cache.get(n) is not None for n in "abcd"] == [False, True, True, True]


class FakeRedis:
    """What the cache calls of a Redis client, failing if asked to."""

    def __init__(self, *, failing: bool = False) -> None:
        self.values: dict[str, bytes] = {}
        self.ttls: dict[str, int] = {}
        self.failing = failing

    async def get(self, key: str) -> bytes | None:
        if self.failing:
            raise ConnectionError("Redis is away")
        return self.values.get(key)

    async def set(self, key: str, value: bytes, *, px: int) -> None:
        if self.failing:
            raise ConnectionError("Redis is away")
        self.values[key], self.ttls[key] = value, px


def redis_cache(client: FakeRedis, now: datetime) -> RedisQuoteCache:
    fake: Any = client
    return RedisQuoteCache(fake, clock=lambda: now)


async def test_redis_keeps_a_quote_for_what_is_left_of_its_validity() -> None:
    client = FakeRedis()
    kept = record()
    await redis_cache(client, NOW).put(kept)
    assert client.ttls[key_of("q1")] == 7 * 24 * 3600 * 1000
    assert await redis_cache(client, NOW).get("q1") == kept
    await redis_cache(client, kept.valid_until - timedelta(milliseconds=1.5)).put(record("q2"))
    assert client.ttls[key_of("q2")] == 1  # rounded down: never kept past its validity
    await redis_cache(client, kept.valid_until).put(record("q3"))
    assert key_of("q3") not in client.values  # it holds no more: not cached


async def test_redis_failing_or_holding_garbage_is_a_miss() -> None:
    client = FakeRedis()
    client.values[key_of("q1")] = b'{"id": "q1"}'  # not a quote record
    assert await redis_cache(client, NOW).get("q1") is None
    client.failing = True
    assert await redis_cache(client, NOW).get("q1") is None
    await redis_cache(client, NOW).put(record())  # not cached, and no error
