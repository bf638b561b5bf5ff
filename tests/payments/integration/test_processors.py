"""The payments dispatcher, health poller and processor client against the real simulators
(`paycore processors`) and PostgreSQL, under each failure pattern of the Rinha test. After every
scenario the backend's summary equals the processors' own, and no payment is lost or doubled."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from rinha import Processors
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.payments import service, store
from paycore.payments.domain import DEFAULT, FALLBACK, Payment, Router
from paycore.payments.processors import ProcessorClient
from paycore.platform.money import from_cents
from paycore.platform.persistence import db
from paycore.platform.persistence.uow import Database

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    eng = db.create_engine(postgres_url)
    async with eng.begin() as conn:
        await conn.run_sync(db.metadata.create_all)
    yield eng
    await eng.dispose()


class Worker:
    """The payments worker's moving parts in this process, on real HTTP clients."""

    def __init__(self, engine: AsyncEngine, processors: Processors) -> None:
        self.engine = engine
        self.clients = {name: ProcessorClient(name, url) for name, url in processors.url.items()}
        self.router = Router(slow_ms=1500)
        self.dispatcher = service.Dispatcher(Database(engine), self.clients, self.router)
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Worker:
        self.tasks = [
            asyncio.create_task(self.dispatcher.run()),
            asyncio.create_task(service.poll_health(self.dispatcher, every=5.0)),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.dispatcher.drain(5)
        for client in self.clients.values():
            await client.close()

    async def take(self, count: int, amount_cents: int = 1990) -> list[str]:
        now = int(time.time() * 1000)
        payments = [(Payment(str(uuid.uuid4()), amount_cents), now) for _ in range(count)]
        async with Database(self.engine).transaction() as tx:
            received = await store.insert_received(tx, payments)
        self.dispatcher.add(received)  # once committed, as the consumer does: else it may pin none
        return [p.correlation_id for p, _ in payments]

    async def settled(self, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while self.dispatcher.waiting:
                await asyncio.sleep(0.05)

    async def summary(self) -> dict[str, tuple[int, Decimal]]:
        found = await service.summary(service.Databases(Database(self.engine)), None, None)
        return {n: (v.requests, from_cents(v.amount_cents)) for n, v in found.items()}


@pytest.fixture
async def worker(engine: AsyncEngine, processors: Processors) -> AsyncIterator[Worker]:
    processors.reset()
    async with Worker(engine, processors) as running:
        yield running
    processors.reset()


async def consistent(worker: Worker, processors: Processors, expected_total: int) -> None:
    ours = await worker.summary()
    theirs = await asyncio.to_thread(processors.summaries)
    assert ours == theirs
    assert sum(count for count, _ in ours.values()) == expected_total


async def test_healthy_default_takes_everything(worker: Worker, processors: Processors) -> None:
    await worker.take(300)
    await worker.settled()
    await consistent(worker, processors, 300)
    assert (await worker.summary())[FALLBACK][0] == 0


async def test_default_failing_sends_to_the_fallback(
    worker: Worker, processors: Processors
) -> None:
    processors.set(DEFAULT, failure=True)
    await worker.take(200)
    await worker.settled()
    await consistent(worker, processors, 200)
    assert (await worker.summary())[DEFAULT][0] == 0


async def test_fallback_failing_changes_nothing_while_default_is_fine(
    worker: Worker, processors: Processors
) -> None:
    processors.set(FALLBACK, failure=True)
    await worker.take(200)
    await worker.settled()
    await consistent(worker, processors, 200)
    assert (await worker.summary())[FALLBACK][0] == 0


async def test_both_failing_holds_payments_until_one_recovers(
    worker: Worker, processors: Processors
) -> None:
    processors.set(DEFAULT, failure=True)
    processors.set(FALLBACK, failure=True)
    await worker.take(150)
    await asyncio.sleep(2)
    assert worker.dispatcher.waiting == 150
    await consistent(worker, processors, 0)
    processors.set(FALLBACK, failure=False)
    await worker.settled()
    await consistent(worker, processors, 150)


async def test_slow_default_is_avoided_without_counting_anything_twice(
    worker: Worker, processors: Processors
) -> None:
    processors.set(DEFAULT, delay=2000)
    await worker.take(100)
    await asyncio.sleep(3)  # the slow answers came back: the router knows default is slow
    await worker.take(200)
    await worker.settled()
    await consistent(worker, processors, 300)
    counts = await worker.summary()
    assert counts[FALLBACK][0] >= 200  # what came after it was known slow went to the fallback


async def test_calls_timing_out_during_a_delay_are_asked_again_of_the_same_processor(
    worker: Worker, processors: Processors
) -> None:
    # 1.5 s delay, a 1 s first timeout (the router believes default is fast): every first call
    # times out while the processor still stores the payment; the retry gets 200 or 422.
    await asyncio.sleep(0.5)  # the poller's first report (delay 0) is in
    processors.set(DEFAULT, delay=1500)
    worker.router.slow_ms = 10_000  # keep routing to default despite the slow answers
    worker.router.min_timeout = 1.0
    timeouts_before = unknown_outcomes()
    await worker.take(100)
    await worker.settled(timeout=90)
    await consistent(worker, processors, 100)
    assert (await worker.summary())[FALLBACK][0] == 0
    assert unknown_outcomes() - timeouts_before >= 100  # every first call did time out


def unknown_outcomes() -> float:
    value = REGISTRY.get_sample_value(
        "paycore_processor_calls_total", {"processor": DEFAULT, "outcome": "unknown"}
    )
    return value or 0.0
