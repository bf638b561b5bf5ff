"""The payments dispatcher against fake processors: each payment stored by exactly one
processor, at the requestedAt recorded, and the summary equal to the processors' own."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from payments_kit import FakeProcessor
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.payments import service, store
from paycore.payments.domain import DEFAULT, FALLBACK, Health, Payment, Router
from paycore.platform.persistence.uow import Database


@pytest.fixture
def processors() -> dict[str, FakeProcessor]:
    return {DEFAULT: FakeProcessor(DEFAULT), FALLBACK: FakeProcessor(FALLBACK)}


@pytest.fixture
async def running(
    engine: AsyncEngine, processors: dict[str, FakeProcessor]
) -> AsyncIterator[service.Dispatcher]:
    router = Router(breaker_threshold=3, breaker_cooldown=0.01)
    dispatcher = service.Dispatcher(
        Database(engine), processors, router, max_in_flight=50, batch=20
    )
    task = asyncio.create_task(dispatcher.run())
    yield dispatcher
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def receive(engine: AsyncEngine, dispatcher: service.Dispatcher, count: int) -> list[str]:
    payments = [
        (Payment(str(uuid.uuid4()), 1990 + i), int(time.time() * 1000)) for i in range(count)
    ]
    async with Database(engine).transaction() as tx:
        new = await store.insert_received(tx, payments)
    dispatcher.add(new)
    return [p.correlation_id for p, _ in payments]


async def settled(dispatcher: service.Dispatcher, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while dispatcher.waiting:
            await asyncio.sleep(0.01)


async def summary_of(engine: AsyncEngine) -> dict[str, tuple[int, int]]:
    async with engine.connect() as conn:
        found = await store.totals(conn, None, None)
    return {name: (t.requests, t.amount_cents) for name, t in found.items()}


def assert_consistent(
    summary: dict[str, tuple[int, int]], processors: dict[str, FakeProcessor]
) -> None:
    for name, processor in processors.items():
        assert summary.get(name, (0, 0)) == processor.totals(), name


async def test_every_payment_is_stored_once_by_the_default_processor(
    engine: AsyncEngine, running: service.Dispatcher, processors: dict[str, FakeProcessor]
) -> None:
    ids = await receive(engine, running, 200)
    await settled(running)
    assert set(processors[DEFAULT].stored) == set(ids)
    assert not processors[FALLBACK].stored
    assert_consistent(await summary_of(engine), processors)


async def test_refused_payments_go_to_the_fallback_and_count_there(
    engine: AsyncEngine, running: service.Dispatcher, processors: dict[str, FakeProcessor]
) -> None:
    processors[DEFAULT].mode = lambda cid, attempt: "refuse"
    ids = await receive(engine, running, 100)
    await settled(running)
    assert not processors[DEFAULT].stored
    assert set(processors[FALLBACK].stored) == set(ids)
    assert_consistent(await summary_of(engine), processors)


async def test_a_call_whose_answer_was_lost_is_asked_again_of_the_same_processor_only(
    engine: AsyncEngine, running: service.Dispatcher, processors: dict[str, FakeProcessor]
) -> None:
    processors[DEFAULT].mode = lambda cid, attempt: "lost-answer" if attempt == 1 else "ok"
    ids = await receive(engine, running, 50)
    await settled(running)
    on_default = {cid for cid, _ in processors[DEFAULT].calls}
    on_fallback = {cid for cid, _ in processors[FALLBACK].calls}
    assert on_default  # the first ones were pinned there before its breaker opened
    assert not on_default & on_fallback  # a payment asked of one processor stays there
    assert on_default | on_fallback == set(ids)
    for cid in on_default:
        calls = [at for c, at in processors[DEFAULT].calls if c == cid]
        assert len(calls) == 2
        assert len(set(calls)) == 1
    assert_consistent(await summary_of(engine), processors)


async def test_payments_wait_while_both_processors_refuse_and_go_when_one_recovers(
    engine: AsyncEngine, running: service.Dispatcher, processors: dict[str, FakeProcessor]
) -> None:
    down = {"now": True}
    for processor in processors.values():
        processor.mode = lambda cid, attempt: "refuse" if down["now"] else "ok"
    await receive(engine, running, 30)
    await asyncio.sleep(0.3)
    assert running.waiting == 30
    assert await summary_of(engine) == {}
    down["now"] = False
    await settled(running)
    assert_consistent(await summary_of(engine), processors)
    assert len(processors[DEFAULT].stored) + len(processors[FALLBACK].stored) == 30


async def test_a_new_worker_finishes_pinned_payments_on_their_processor_at_their_time(
    engine: AsyncEngine, processors: dict[str, FakeProcessor]
) -> None:
    payments = [(Payment(str(uuid.uuid4()), 1000), 1) for _ in range(10)]
    async with Database(engine).transaction() as tx:
        await store.insert_received(tx, payments)
        await store.pin(tx, [p.correlation_id for p, _ in payments[:4]], FALLBACK, 123_456)
    dispatcher = service.Dispatcher(Database(engine), processors, Router())
    assert await dispatcher.recover() == 10
    task = asyncio.create_task(dispatcher.run())
    try:
        await settled(dispatcher)
    finally:
        task.cancel()
    assert {cid for cid, _ in processors[FALLBACK].calls} == {
        p.correlation_id for p, _ in payments[:4]
    }
    assert {at for _, at in processors[FALLBACK].calls} == {123_456}
    assert len(processors[DEFAULT].stored) == 6
    assert_consistent(await summary_of(engine), processors)


async def test_purged_payments_are_not_sent(
    engine: AsyncEngine, processors: dict[str, FakeProcessor]
) -> None:
    dispatcher = service.Dispatcher(Database(engine), processors, Router())
    payments = [(Payment(str(uuid.uuid4()), 1000), 1) for _ in range(5)]
    async with Database(engine).transaction() as tx:
        new = await store.insert_received(tx, payments)
    await service.purge(service.Databases(Database(engine)))
    dispatcher.add(new)
    task = asyncio.create_task(dispatcher.run())
    try:
        await settled(dispatcher, timeout=2)
    finally:
        task.cancel()
    assert not processors[DEFAULT].calls


async def test_summary_windows_on_the_requested_at_sent(
    engine: AsyncEngine, running: service.Dispatcher, processors: dict[str, FakeProcessor]
) -> None:
    await receive(engine, running, 20)
    await settled(running)
    times = sorted(at for at, _ in processors[DEFAULT].stored.values())
    databases = service.Databases(Database(engine))
    everything = await service.summary(databases, None, None)
    before = await service.summary(databases, None, times[0] - 1)
    exact = await service.summary(databases, times[0], times[-1])
    assert everything[DEFAULT].requests == 20
    assert (before[DEFAULT].requests, before[DEFAULT].amount_cents) == (0, 0)
    assert exact == everything
    assert everything[FALLBACK].requests == 0
    assert everything[DEFAULT].amount_cents == sum(1990 + i for i in range(20))


async def test_one_dispatcher_lease_at_a_time_taken_over_only_when_expired(
    engine: AsyncEngine,
) -> None:
    lost: list[str] = []
    first = service.Lease(Database(engine), "first", ttl=0.3, on_lost=lambda: lost.append("first"))
    second = service.Lease(
        Database(engine), "second", ttl=0.3, on_lost=lambda: lost.append("second")
    )
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    await asyncio.sleep(0.1)
    assert not waiting.done()  # held by the first, which is alive
    await first.release()
    await asyncio.wait_for(waiting, 1)  # given back: taken at once

    keeping = asyncio.create_task(second.keep())
    await asyncio.sleep(0.5)
    assert not lost  # renewed while alive
    keeping.cancel()  # the second worker freezes: its lease runs out
    await asyncio.sleep(0.4)
    await asyncio.wait_for(first.acquire(), 1)
    await asyncio.wait_for(second.keep(), 1)  # it wakes up, cannot renew: told to stop
    assert lost == ["second"]


async def test_a_payment_received_twice_is_recorded_and_queued_once(engine: AsyncEngine) -> None:
    first = [(Payment(str(uuid.uuid4()), 100), 1) for _ in range(3)]
    again = [first[1], (Payment(str(uuid.uuid4()), 200), 2)]
    async with Database(engine).transaction() as tx:
        assert len(await store.insert_received(tx, first)) == 3
        new = await store.insert_received(tx, again)
    assert [p.correlation_id for p in new] == [again[1][0].correlation_id]


async def test_the_health_poller_never_asks_a_processor_twice_within_its_interval(
    engine: AsyncEngine, processors: dict[str, FakeProcessor]
) -> None:
    asked: list[tuple[str, float]] = []
    for processor in processors.values():

        async def health(*, timeout: float = 2.0, name: str = processor.name) -> Health | None:
            asked.append((name, time.monotonic()))
            return Health(name == DEFAULT, 0)

        processor.health = health  # type: ignore[method-assign]
    router = Router()
    dispatcher = service.Dispatcher(Database(engine), processors, router)
    started = time.monotonic()
    poller = asyncio.create_task(service.poll_health(dispatcher, every=0.2))
    await asyncio.sleep(0.1)
    assert asked == []  # the previous poller may have just asked: wait one interval first
    await asyncio.sleep(0.55)
    poller.cancel()
    for name in processors:
        times = [at for who, at in asked if who == name]
        assert 1 <= len(times) <= 3  # at most one call per interval (fewer on a slow box)
        assert times[0] - started >= 0.2
        assert all(later - earlier >= 0.19 for earlier, later in itertools.pairwise(times))
    assert router.choose() == FALLBACK  # the reports reached the router
