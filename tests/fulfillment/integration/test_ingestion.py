"""Orders from the ``orders`` topic into PostgreSQL's normalized tables, over Kafka and NATS:
every valid order stored once (redeliveries included), every bad one a dead letter with its
reason, the cache warmed from the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.fulfillment import api, consumers, service, store
from paycore.fulfillment.generator import generate
from paycore.fulfillment.messages import decode
from paycore.platform.ids import uuid7
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Envelope, Subscription
from paycore.platform.messaging.consumer import Consumer, RetryPolicy
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.uow import Database
from paycore.platform.runtime import supervise

COUNT = 600


async def counts(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as conn:
        stored = await store.count_orders(conn)
        letters = (await conn.execute(select(func.count()).select_from(dead_letters))).scalar_one()
    return stored, int(letters)


@pytest.mark.parametrize("workers", [1, 2], ids=["one worker", "two workers"])
async def test_orders_are_stored_once_and_bad_ones_dead_lettered(
    engine: AsyncEngine, broker_url: str, workers: int
) -> None:
    """``workers`` consumers of the group, each with its own broker connection (as separate
    worker processes are), share the topic: still every order stored exactly once. Each runs
    under the supervisor the worker process uses: a pull NATS refuses (seen once in a run of
    the whole suite: 503, no responders, with two consumers starting together) ends the
    consume loop, and a worker restarts it, the messages it had fetched redelivered."""
    messages = list(generate(COUNT, bad_rate=0.2, seed=7))
    valid = [decode(body) for body, kind in messages if kind is None]
    bad = Counter(kind for _, kind in messages if kind is not None)
    redelivered = [body for body, kind in messages[:50] if kind is None]

    buses = [create_bus(broker_url) for _ in range(workers)]
    for one in buses:
        await one.connect()
    bus = buses[0]
    _, handler = consumers.ingestion()
    subscription = Subscription(f"orders-{uuid7()[-8:]}", consumers.GROUP, batch=200)
    await bus.ensure_topic(subscription.topic)
    tasks = [
        asyncio.create_task(
            supervise(
                f"consume-{n}",
                Consumer(
                    subscription=subscription,
                    handler=handler,
                    db=Database(engine),
                    bus=one,
                    retry=RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.05),
                ).run,
            )
        )
        for n, one in enumerate(buses)
    ]
    try:
        envelopes = [Envelope(subscription.topic, body, id=uuid7()) for body, _ in messages]
        # the same orders again under new message ids: stored once all the same
        envelopes += [Envelope(subscription.topic, body, id=uuid7()) for body in redelivered]
        for start in range(0, len(envelopes), 100):
            await bus.publish(envelopes[start : start + 100])
        deadline = asyncio.get_running_loop().time() + 90
        while await counts(engine) != (len(valid), sum(bad.values())):
            assert asyncio.get_running_loop().time() < deadline, await counts(engine)
            await asyncio.sleep(0.2)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for one in buses:
            await one.close()

    async with engine.connect() as conn:
        stored = await store.load_orders(conn, [o.order_uid for o in valid])
        reasons = Counter(
            r.split(":", 1)[0] for r in (await conn.execute(select(dead_letters.c.error))).scalars()
        )
    assert stored == {o.order_uid: o for o in valid}
    assert reasons == bad

    cache = service.OrderCache(engine.connect, api.render, size=100)
    assert await cache.warm() == 100
    async with engine.connect() as conn:
        newest = await store.recent_uids(conn, 100)
    assert all(cache.get_cached(uid) is not None for uid in newest)
    assert (cache.hits, cache.misses) == (100, 0)
    assert json.loads(await cache.get(valid[0].order_uid) or b"") == orjson.loads(
        api.render(valid[0])
    )
