"""The outbox relay's hand-off, on both engines: events a writer committed are published
without reading the table back, in commit order, and a failed publish leaves them to a sweep
that keeps that order."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.messaging.bus import CREATED_AT, Envelope
from paycore.platform.messaging.relay import DELETE_EVERY_SECONDS, Relay
from paycore.platform.persistence import outbox
from paycore.platform.persistence.db import create_engine, metadata
from paycore.platform.persistence.uow import Database

TOPIC = "shop.orders"


@pytest.fixture
def engine(each_engine: AsyncEngine) -> AsyncEngine:
    return each_engine


class FlakyBus:
    """Keeps what is published; refuses the next ``failures`` publishes."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.failures = 0
        self.refused: list[list[str]] = []

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self.failures:
            self.failures -= 1
            self.refused.append([e.id for e in envelopes])
            raise ConnectionError("broker unavailable")
        self.published.extend(envelopes)


async def _commit(engine: AsyncEngine, relay: Relay | None, *bodies: bytes) -> list[str]:
    """Enqueue events in one transaction, handing them to ``relay`` once committed."""
    async with Database(engine, relay.handoff if relay else None).transaction() as tx:
        return [tx.publish(TOPIC, body) for body in bodies]


async def _waiting(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.outbox.c.id).order_by(outbox.outbox.c.seq))
        return list(rows.scalars())


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Relay], None]]:
    relays: list[tuple[Relay, asyncio.Task[None]]] = []

    def start(relay: Relay) -> None:
        relays.append((relay, asyncio.create_task(relay.run())))

    yield start
    for relay, task in relays:
        await relay.stop()
        await task


async def test_handed_events_are_published_in_commit_order_and_leave_the_table(
    engine: AsyncEngine, running: Callable[[Relay], None]
) -> None:
    bus = FlakyBus()
    relay = Relay(engine, bus, idle_poll_seconds=60)
    running(relay)
    await _until(lambda: not relay._sweep)  # the start-up sweep found nothing
    first = await _commit(engine, relay, b"a", b"b")
    second = await _commit(engine, relay, b"c")
    await _until(lambda: len(bus.published) == 3)
    assert [e.id for e in bus.published] == first + second
    assert [e.body for e in bus.published] == [b"a", b"b", b"c"]
    assert bus.published[0].headers[CREATED_AT].isdigit()
    async with asyncio.timeout(10):
        while await _waiting(engine):  # deleted once confirmed
            await asyncio.sleep(0.01)


async def test_the_envelope_handed_over_is_the_one_a_sweep_would_read(
    engine: AsyncEngine,
) -> None:
    handed: list[Envelope] = []
    async with Database(engine, handed.extend).transaction() as tx:
        tx.publish(TOPIC, b"x", key="k", headers={"h": "1"})
    swept = FlakyBus()
    assert await Relay(engine, swept).relay_once() == 1
    assert handed == swept.published


async def test_a_failed_publish_leaves_the_events_to_a_sweep_that_keeps_their_order(
    engine: AsyncEngine, running: Callable[[Relay], None]
) -> None:
    bus = FlakyBus()
    relay = Relay(engine, bus, poll_seconds=0.01, idle_poll_seconds=60)
    running(relay)
    await _until(lambda: not relay._sweep)
    bus.failures = 1
    refused = await _commit(engine, relay, b"1", b"2")
    await _until(lambda: bool(bus.refused))
    assert bus.refused == [refused]
    later = await _commit(engine, relay, b"3")  # while the sweep is due: left to it
    await _until(lambda: len(bus.published) == 3)
    assert [e.id for e in bus.published] == refused + later
    async with asyncio.timeout(10):  # the sweep deletes its rows as it commits, just after
        while await _waiting(engine):  # the publish counted above
            await asyncio.sleep(0.01)


async def test_too_much_handed_over_falls_back_to_the_table(engine: AsyncEngine) -> None:
    relay = Relay(engine, FlakyBus(), max_handed=2)
    relay._sweep = False  # as after the start-up sweep
    await _commit(engine, relay, b"1", b"2")
    assert len(relay._handed) == 2
    await _commit(engine, relay, b"3")
    assert not relay._handed
    assert relay._sweep


async def test_stop_publishes_what_was_handed_over(engine: AsyncEngine) -> None:
    bus = FlakyBus()
    relay = Relay(engine, bus)
    relay._sweep = False
    ids = await _commit(engine, relay, b"1", b"2")
    await relay.stop()
    assert [e.id for e in bus.published] == ids
    assert await _waiting(engine) == []


async def test_events_of_a_rolled_back_transaction_are_not_handed_over(
    engine: AsyncEngine,
) -> None:
    handed: list[Envelope] = []

    async def failing_use_case() -> None:
        async with Database(engine, handed.extend).transaction() as tx:
            tx.publish(TOPIC, b"never")
            raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        await failing_use_case()
    async with Database(engine, handed.extend).transaction() as tx:
        kept = tx.publish(TOPIC, b"kept")
    assert [e.id for e in handed] == [kept]
    assert await _waiting(engine) == [kept]


async def test_on_sqlite_a_delete_waits_for_the_write_lock_and_then_deletes(
    tmp_path: Path, running: Callable[[Relay], None]
) -> None:
    """Handed-over rows are deleted on a sqlite3 connection of the relay's own: while another
    process holds the write lock they stay (published, not lost), and go once it is free."""
    path = tmp_path / "relay.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    bus = FlakyBus()
    relay = Relay(engine, bus, idle_poll_seconds=60)
    running(relay)
    try:
        await _until(lambda: not relay._sweep)
        ids = await _commit(engine, relay, b"a", b"b")
        other = sqlite3.connect(path, isolation_level=None)  # another process's writer
        other.execute("BEGIN IMMEDIATE")
        await _until(lambda: len(bus.published) == 2)
        await asyncio.sleep(3 * DELETE_EVERY_SECONDS)
        rows = other.execute("SELECT id FROM outbox ORDER BY seq").fetchall()
        assert [r[0] for r in rows] == ids  # the delete is waiting for the lock
        other.execute("COMMIT")
        other.close()
        async with asyncio.timeout(10):
            while await _waiting(engine):
                await asyncio.sleep(0.01)
    finally:
        await relay.stop()
        await engine.dispose()
