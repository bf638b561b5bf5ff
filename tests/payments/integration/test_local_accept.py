"""``accept=local`` (the Rinha deployment, ADR 0017) on SQLite and PostgreSQL: an API instance
records the payments it takes by group commit, pinned at once, owned by it, and dispatches them
itself; a replayed correlationId is one payment; a restarted instance takes up its own
unfinished payments and no other's; one instance at a time asks the processors for their
health and every instance hears it. With a journal an accept returns once the payment is
appended to it, and the payments a killed instance journaled are recorded and dispatched by
the next one. With a database per instance (``siblings``) the summary
and the purge cover every instance's, a payment a sibling holds is not recorded again, and the
health poller's lease is held in the one database every instance names first."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from integration_fixtures import migrated
from payments_kit import FakeProcessor
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.payments import service, store
from paycore.payments.domain import DEFAULT, FALLBACK, Payment, Router
from paycore.payments.journal import Journal
from paycore.platform.persistence.uow import Database

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def engine(each_engine: AsyncEngine) -> AsyncEngine:
    return each_engine


def fakes() -> dict[str, FakeProcessor]:
    return {DEFAULT: FakeProcessor(DEFAULT), FALLBACK: FakeProcessor(FALLBACK)}


class Instance:
    """One API instance's payments parts: its dispatcher (running) and its recorder."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str,
        payers: dict[str, FakeProcessor],
        siblings: tuple[Database, ...] = (),
        journal: Journal | None = None,
    ) -> None:
        self.db = Database(engine)
        self.databases = service.Databases(self.db, siblings)
        self.payers = payers
        self.dispatcher = service.Dispatcher(self.db, payers, Router(), owner=name)
        self.recorder = service.Recorder(
            self.db, self.dispatcher, owner=name, siblings=siblings, journal=journal
        )
        self.task: asyncio.Task[None] | None = None

    def run(self) -> None:
        self.task = asyncio.create_task(self.dispatcher.run())

    async def stop(self) -> None:
        await self.recorder.stop()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.dispatcher.drain(timeout=1)


@pytest.fixture
async def instance(engine: AsyncEngine) -> AsyncIterator[Instance]:
    one = Instance(engine, "api1", fakes())
    yield one
    await one.stop()


async def rows(engine: AsyncEngine) -> dict[str, tuple[str | None, str | None, bool]]:
    p = store.payments.c
    async with engine.connect() as conn:
        found = await conn.execute(select(p.correlation_id, p.owner, p.processor, p.processed))
    return {cid: (owner, processor, bool(done)) for cid, owner, processor, done in found}


async def settled(dispatcher: service.Dispatcher) -> None:
    async with asyncio.timeout(10):
        while dispatcher.waiting:
            await asyncio.sleep(0.01)


async def processed(engine: AsyncEngine, count: int) -> None:
    """Wait for ``count`` payments recorded and processed (journaled ones are committed after
    their accept returned, and dispatched after that)."""
    async with asyncio.timeout(10):
        while sum(done for _, _, done in (await rows(engine)).values()) < count:
            await asyncio.sleep(0.01)


def new_payments(count: int) -> list[Payment]:
    return [Payment(str(uuid.uuid4()), 1990 + n) for n in range(count)]


async def test_accepted_payments_are_recorded_pinned_and_dispatched_once(
    engine: AsyncEngine, instance: Instance
) -> None:
    instance.run()
    payments = new_payments(60)
    await asyncio.gather(*(instance.recorder.accept(p) for p in payments))
    recorded = await rows(engine)
    assert len(recorded) == 60  # committed before accept returned
    assert {owner for owner, _, _ in recorded.values()} == {"api1"}
    assert {processor for _, processor, _ in recorded.values()} == {DEFAULT}  # pinned at once
    await settled(instance.dispatcher)
    stored = instance.payers[DEFAULT].stored
    assert set(stored) == {p.correlation_id for p in payments}
    assert all(done for _, _, done in (await rows(engine)).values())
    async with engine.connect() as conn:
        totals = await store.totals(conn, None, None)
    assert (totals[DEFAULT].requests, totals[DEFAULT].amount_cents) == (
        60,
        sum(p.amount_cents for p in payments),
    )


async def test_a_replayed_payment_is_one_payment(engine: AsyncEngine, instance: Instance) -> None:
    instance.run()
    (payment,) = new_payments(1)
    other = Instance(engine, "api2", instance.payers)
    try:
        await asyncio.gather(*(instance.recorder.accept(payment) for _ in range(3)))
        await other.recorder.accept(payment)  # the client retried on the other instance
    finally:
        await other.stop()
    recorded = await rows(engine)
    assert list(recorded) == [payment.correlation_id]
    assert recorded[payment.correlation_id][0] == "api1"  # the first to record it owns it
    await settled(instance.dispatcher)
    assert [cid for cid, _ in instance.payers[DEFAULT].calls] == [payment.correlation_id]


async def test_a_journaled_payment_is_answered_first_and_committed_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "api1.db"
    async with migrated(f"sqlite+aiosqlite:///{path}") as engine:
        journal = Journal(tmp_path / "journal", "api1")
        one = Instance(engine, "api1", fakes(), journal=journal)
        try:
            assert one.recorder.start() == 0
            one.run()
            payments = new_payments(20)
            for payment in payments:  # no wait for a commit: the loop never runs the writer
                await one.recorder.accept(payment)
            with sqlite3.connect(path) as db:  # read at once, before the loop runs again
                assert db.execute("SELECT count(*) FROM payments").fetchone() == (0,)
            (segment,) = journal.segments
            assert len(segment.read_text().splitlines()) == 20
            await one.recorder.accept(payments[0])  # posted again before its commit: no line
            assert len(segment.read_text().splitlines()) == 20
            await processed(engine, 20)
            recorded = await rows(engine)
            assert set(recorded) == {p.correlation_id for p in payments}
            assert sorted(cid for cid, _ in one.payers[DEFAULT].calls) == sorted(recorded)
        finally:
            await one.stop()
        assert journal.segments == []  # every line committed: the segment went with the stop


async def test_payments_a_killed_instance_journaled_are_recorded_and_dispatched_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    directory = tmp_path / "journal"
    killed = Journal(directory, "api1")
    killed.open()
    committed, only_journaled = new_payments(3), new_payments(4)
    before = Instance(engine, "api1", fakes())
    try:
        for payment in committed:  # journaled and committed; the segment not deleted yet
            killed.append(payment)
            await before.recorder.accept(payment)
    finally:
        await before.stop()
    for payment in only_journaled:  # answered 202, then the process was killed
        killed.append(payment)
    journal = Journal(directory, "api1")
    again = Instance(engine, "api1", fakes(), journal=journal)
    try:
        assert await again.dispatcher.recover() == 3
        assert again.recorder.start() == 7
        again.run()
        await processed(engine, 7)
        recorded = await rows(engine)
        assert set(recorded) == {p.correlation_id for p in committed + only_journaled}
        assert all(owner == "api1" and done for owner, _, done in recorded.values())
        calls = [cid for cid, _ in again.payers[DEFAULT].calls]
        assert sorted(calls) == sorted(recorded)  # each sent once
        assert [p.name for p in journal.segments] == ["api1.2.journal"]  # the killed one's went
    finally:
        await again.stop()


async def test_journaled_payments_whose_commit_fails_are_committed_later(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal", "api1")
    one = Instance(engine, "api1", fakes(), journal=journal)
    monkeypatch.setattr(one.recorder, "RETRY_SECONDS", 0.05)
    real_submit = one.recorder._writer.submit
    failures = 2

    async def failing(item: Payment) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("disk full")
        await real_submit(item)

    monkeypatch.setattr(one.recorder._writer, "submit", failing)
    try:
        one.recorder.start()
        one.run()
        payments = new_payments(5)
        for payment in payments:
            await one.recorder.accept(payment)
        await processed(engine, 5)
        assert failures == 0
        assert sorted(cid for cid, _ in one.payers[DEFAULT].calls) == sorted(
            p.correlation_id for p in payments
        )
    finally:
        await one.stop()
    assert journal.segments == []


async def test_a_payment_the_journal_could_not_take_is_not_accepted_until_it_does(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal", "api1")
    one = Instance(engine, "api1", fakes(), journal=journal)
    try:
        one.recorder.start()
        one.run()
        (payment,) = new_payments(1)
        real_append = journal.append

        def disk_full(payment: Payment) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(journal, "append", disk_full)
        with pytest.raises(OSError, match="No space left"):  # no 202: the client retries
            await one.recorder.accept(payment)
        monkeypatch.setattr(journal, "append", real_append)
        await one.recorder.accept(payment)  # the retry is journaled, not taken as seen
        await processed(engine, 1)
        assert [cid for cid, _ in one.payers[DEFAULT].calls] == [payment.correlation_id]
    finally:
        await one.stop()


async def test_a_stopping_instance_commits_what_it_journaled(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal", "api1")
    one = Instance(engine, "api1", fakes(), journal=journal)
    one.recorder.start()
    payments = new_payments(4)
    for payment in payments:
        await one.recorder.accept(payment)
    await one.stop()  # at once: before the journaled payments' commit was due
    assert set(await rows(engine)) == {p.correlation_id for p in payments}
    assert journal.segments == []


async def test_with_no_processor_available_payments_are_recorded_unpinned(
    engine: AsyncEngine, instance: Instance
) -> None:
    for state in instance.dispatcher.router.states.values():
        state.on_health(True, 0)
    payments = new_payments(3)
    for payment in payments:
        await instance.recorder.accept(payment)
    assert {processor for _, processor, _ in (await rows(engine)).values()} == {None}
    assert instance.dispatcher.waiting == 3
    instance.run()
    instance.dispatcher.router.states[FALLBACK].on_health(False, 0)
    instance.dispatcher.nudge()
    await settled(instance.dispatcher)
    assert set(instance.payers[FALLBACK].stored) == {p.correlation_id for p in payments}


async def test_a_restarted_instance_takes_up_its_own_unfinished_payments_only(
    engine: AsyncEngine,
) -> None:
    first, second = Instance(engine, "api1", fakes()), Instance(engine, "api2", fakes())
    try:
        mine, theirs = new_payments(5), new_payments(4)
        for payment in mine:
            await first.recorder.accept(payment)  # recorded, never dispatched: then it "died"
        for payment in theirs:
            await second.recorder.accept(payment)
    finally:
        await first.stop()
        await second.stop()
    again = Instance(engine, "api1", fakes())
    try:
        assert await again.dispatcher.recover() == 5
        again.run()
        await settled(again.dispatcher)
        assert set(again.payers[DEFAULT].stored) == {p.correlation_id for p in mine}
    finally:
        await again.stop()
    state = await rows(engine)
    assert all(state[p.correlation_id][2] for p in mine)
    assert not any(state[p.correlation_id][2] for p in theirs)


async def test_one_instance_asks_for_health_and_every_one_hears_it(engine: AsyncEngine) -> None:
    await both_hear_one_poller([service.Databases(Database(engine))] * 2)


async def test_the_health_lease_is_asked_for_only_when_reports_are_due(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at every tick (32 per instance here, 64 in all): an idle instance would write every
    second."""
    claims: list[str] = []
    claim = store.claim_lease

    async def counted(tx: Any, holder: str, *args: Any, **kwargs: Any) -> bool:
        claims.append(holder)
        return await claim(tx, holder, *args, **kwargs)

    monkeypatch.setattr(store, "claim_lease", counted)
    await both_hear_one_poller([service.Databases(Database(engine))] * 2)
    assert 2 <= len(claims) <= 20  # about one per report due (0.5 s) and a loser's try; not 64


async def both_hear_one_poller(views: list[service.Databases]) -> None:
    """Two instances' health pollers, each with its view of the databases, for 1.6 s."""
    payers = fakes()
    payers[DEFAULT].failing = True
    routers = [Router(), Router()]
    dispatchers = [
        service.Dispatcher(view.own, payers, r) for view, r in zip(views, routers, strict=True)
    ]
    pollers = [
        asyncio.create_task(
            service.share_health(views[n], f"holder-{n}", dispatchers[n], every=0.5, tick=0.05)
        )
        for n in range(2)
    ]
    await asyncio.sleep(1.6)
    for poller in pollers:
        poller.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
    # at most once per 0.5 s between both (the first at once), and asked more than once
    assert 2 <= payers[DEFAULT].health_calls <= 4
    assert payers[FALLBACK].health_calls == payers[DEFAULT].health_calls
    assert all(router.states[DEFAULT].failing for router in routers)
    assert all(router.choose() == FALLBACK for router in routers)


@pytest.fixture
async def two_files(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """A SQLite file per instance, as the Rinha deployment has."""
    async with (
        migrated(f"sqlite+aiosqlite:///{tmp_path / 'api1.db'}") as first,
        migrated(f"sqlite+aiosqlite:///{tmp_path / 'api2.db'}") as second,
    ):
        yield first, second


async def test_instances_with_databases_of_their_own_answer_for_all(
    two_files: tuple[AsyncEngine, AsyncEngine],
) -> None:
    first, second = two_files
    payers = fakes()
    one = Instance(first, "api1", payers, siblings=(Database(second),))
    two = Instance(second, "api2", payers, siblings=(Database(first),))
    try:
        one.run()
        two.run()
        mine, theirs = new_payments(3), new_payments(2)
        await asyncio.gather(*(one.recorder.accept(p) for p in mine))
        await asyncio.gather(*(two.recorder.accept(p) for p in theirs))
        await two.recorder.accept(mine[0])  # a retry at the other instance: not recorded there
        assert len(await rows(first)) == 3
        assert len(await rows(second)) == 2
        await settled(one.dispatcher)
        await settled(two.dispatcher)
        assert len(payers[DEFAULT].calls) == 5  # each payment sent once
        expected = (5, sum(p.amount_cents for p in mine + theirs))
        for view in (one.databases, two.databases):
            found = await service.summary(view, None, None)
            assert (found[DEFAULT].requests, found[DEFAULT].amount_cents) == expected
            assert found[FALLBACK].requests == 0
        # both name the same database first: the one holding the shared leases
        assert one.databases.coordinator.engine.url == first.url
        assert two.databases.coordinator.engine.url == first.url
        await service.purge(two.databases)
        assert await rows(first) == {}
        assert await rows(second) == {}
    finally:
        await one.stop()
        await two.stop()


async def test_one_poller_for_instances_with_databases_of_their_own(
    two_files: tuple[AsyncEngine, AsyncEngine],
) -> None:
    first, second = (Database(engine) for engine in two_files)
    await both_hear_one_poller(
        [service.Databases(first, (second,)), service.Databases(second, (first,))]
    )
