"""Several relays draining one outbox while writers keep adding events: every event reaches
the broker, none is lost (a relay must never delete a row it did not publish)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from servers import Server
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.ids import uuid7
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Bus, Delivery, Envelope, Subscription
from paycore.platform.messaging.relay import Relay
from paycore.platform.persistence.db import create_engine, metadata
from paycore.platform.persistence.uow import Database

EVENTS = 1_500


class SlowPublish:
    """A bus whose publishes take 20 ms longer."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await asyncio.sleep(0.02)
        await self._bus.publish(envelopes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bus, name)


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """Three engines on one database: the writer's process and two relays' processes."""
    found = [create_engine(database_url) for _ in range(3)]
    async with found[0].begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield found
    for eng in found:
        await eng.dispose()


async def test_two_relays_and_a_busy_writer_lose_nothing(
    engines: list[AsyncEngine], nats_server: Server
) -> None:
    engine = engines[0]
    topic = f"relays.t{uuid7().replace('-', '')[-12:]}"
    written: list[str] = []
    received: set[str] = set()

    async def collect(batch: Sequence[Delivery]) -> None:
        received.update(d.id for d in batch)

    async def writer() -> None:
        # Small, spaced commits, each waking both relays (as a commit wakes its process's
        # relay): they keep draining the table to empty, as in production.
        for start in range(0, EVENTS, 2):
            async with Database(engine).transaction() as tx:
                for n in range(start, start + 2):
                    written.append(tx.publish(topic, str(n).encode()))
            for relay in relays:
                relay.notify()
            await asyncio.sleep(0.002)

    publisher_a, publisher_b, reader = (create_bus(nats_server.url) for _ in range(3))
    for bus in (publisher_a, publisher_b, reader):
        await bus.connect()
    await reader.ensure_topic(topic)
    # One relay on a slow broker connection: its reads go stale while the other relay drains
    # the table and the writer adds new rows, the situation in which a relay deleting by
    # position instead of by message id would drop unpublished events.
    relays = [
        Relay(engine, SlowPublish(publisher_a), batch=7),
        Relay(engine, publisher_b, batch=11),
    ]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    consume = asyncio.create_task(reader.subscribe(Subscription(topic, "check"), collect))
    try:
        await writer()
        for relay in relays:
            relay.notify()
        deadline = asyncio.get_running_loop().time() + 60
        while received != set(written):
            assert asyncio.get_running_loop().time() < deadline, len(set(written) - received)
            await asyncio.sleep(0.1)
    finally:
        for relay in relays:
            await relay.stop()
        for task in [*tasks, consume]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for bus in (publisher_a, publisher_b, reader):
            await bus.close()
    assert len(written) == len(set(written)) == EVENTS
    assert await relays[0].backlog() == 0
