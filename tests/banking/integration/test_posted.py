"""``banking.transfer.posted`` published from the journal (``banking.posted``) on each engine
(SQLite, then PostgreSQL): every entry's event once, in journal order, whether the ledger
worker handed the entries over or another process wrote them; the cursor moved only past what
the broker confirmed, so a refused publish and a publisher stopped between the broker's
confirmation and the cursor lose nothing; a new publisher goes on from the cursor; on
PostgreSQL one publisher at a time; a database migrated from before starts the cursor at the
journal's head. The flow tests (``test_flow``, ``test_pix_flow``) run it on the real brokers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
import pytest
from alembic import command
from banking_kit import eventually, tid
from memory_bus import MemoryBus
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore import schema
from paycore.banking import messages, posted, service
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store
from paycore.banking.ledger.domain import Entry, Limit, single
from paycore.platform.clock import iso, utcnow
from paycore.platform.messaging.bus import CREATED_AT, Envelope
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database


class Refusing(MemoryBus):
    """A broker that refuses the next ``refusals`` publishes."""

    def __init__(self, refusals: int = 0) -> None:
        super().__init__()
        self.refusals = refusals

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if self.refusals:
            self.refusals -= 1
            raise ConnectionError("the broker is away")
        await super().publish(envelopes)


async def written(
    db: Database, count: int, publisher: posted.Publisher | None = None
) -> list[Entry]:
    """``count`` deposits into a new account, one transaction each; handed to ``publisher``
    as they commit, as the ledger worker hands its batches."""
    async with db.transaction() as tx:
        bank = await ledger.ensure_bank_accounts(tx, service.BANK_ACCOUNTS, utcnow())
        account = await ledger.open_account(
            tx, kind="customer", limit=Limit.DEBITS_MUST_NOT_EXCEED_CREDITS, now=utcnow()
        )
    entries = []
    for _ in range(count):
        transfer = single(tid(), bank[service.CASH.name], account, 100, "deposit")
        async with db.transaction() as tx:
            applied = await ledger.apply(tx, [transfer], utcnow())
            if publisher is not None:
                new = applied.entries
                tx.after_commit(lambda new=new: publisher.handoff(new))  # type: ignore[misc]
        entries += applied.entries
    return entries


@contextlib.asynccontextmanager
async def running(publisher: posted.Publisher) -> AsyncIterator[posted.Publisher]:
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def ids(envelopes: Sequence[Envelope]) -> list[str]:
    return [orjson.loads(e.body)["id"] for e in envelopes if e.topic == messages.POSTED]


async def cursor(db: Database) -> int:
    async with db.connect() as conn:
        return await store.published_seq(conn)


async def test_every_entry_is_published_once_in_journal_order(each_engine: AsyncEngine) -> None:
    db, bus = Database(each_engine), MemoryBus()
    publisher = posted.Publisher(db, bus, batch=7, poll_seconds=2)
    before = await written(db, 10)  # another process's: read from the journal
    async with running(publisher):
        await eventually(lambda: _at(db, before[-1].seq), timeout=10)
        gap = await written(db, 3)  # another process's, written before the next poll
        handed = await written(db, 15, publisher)  # the first waits for the gap's entries
        more = await written(db, 5)
        entries = before + gap + handed + more
        last = entries[-1].seq
        await eventually(lambda: _at(db, last), timeout=10)
    assert ids(bus.published) == [e.id for e in entries]
    assert [e.seq for e in entries] == list(range(entries[0].seq, last + 1))
    for entry in (before[0], handed[0]):  # read from the journal, handed over
        [sent] = [e for e in bus.published if e.id == f"posted-{entry.id}"]
        assert sent.key == entry.id
        assert orjson.loads(sent.body) == {
            "v": 1,
            "id": entry.id,
            "kind": "single",
            "seq": entry.seq,
            "debit_account_id": entry.debit_account_id,
            "credit_account_id": entry.credit_account_id,
            "amount": 100,
            "currency": "BRL",
            "code": "deposit",
            "pending_id": None,
            "at": iso(entry.at),
        }
        assert sent.headers[CREATED_AT] == str(int(entry.at.timestamp() * 1000))


async def _at(db: Database, seq: int) -> bool:
    return await cursor(db) == seq


async def test_a_refused_publish_moves_no_cursor_and_is_sent_again(
    each_engine: AsyncEngine,
) -> None:
    db, bus = Database(each_engine), Refusing(refusals=2)
    publisher = posted.Publisher(db, bus, poll_seconds=0.01)
    entries = await written(db, 3)
    async with running(publisher):
        await eventually(lambda: _at(db, entries[-1].seq), timeout=10)
    assert bus.refusals == 0
    assert ids(bus.published) == [e.id for e in entries]


async def test_a_publisher_stopped_before_its_cursor_moved_sends_the_same_events_again(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, bus = Database(each_engine), MemoryBus()
    entries = await written(db, 4)

    async def stopped(tx: object, seq: int) -> None:
        raise asyncio.CancelledError  # as a SIGKILL after the broker's confirmation

    with monkeypatch.context() as patched:
        patched.setattr(store, "set_published_seq", stopped)
        with pytest.raises(asyncio.CancelledError):
            await posted.Publisher(db, bus).run()
    assert await cursor(db) == 0
    async with running(posted.Publisher(db, bus, poll_seconds=0.01)):
        await eventually(lambda: _at(db, entries[-1].seq), timeout=10)
    expected = [e.id for e in entries]
    assert ids(bus.published) == expected + expected  # the same message ids: dropped as repeats
    assert len({e.id for e in bus.published}) == len(entries)
    more = await written(db, 2)  # a third publisher goes on from the cursor
    async with running(posted.Publisher(db, bus, poll_seconds=0.01)):
        await eventually(lambda: _at(db, more[-1].seq), timeout=10)
    assert ids(bus.published) == expected + expected + [e.id for e in more]


async def test_one_publisher_at_a_time_on_postgresql(engine: AsyncEngine) -> None:
    db, first_bus, second_bus = Database(engine), MemoryBus(), MemoryBus()
    entries = await written(db, 3)
    async with running(posted.Publisher(db, first_bus, poll_seconds=0.01)):
        await eventually(lambda: _at(db, entries[-1].seq), timeout=10)
        async with running(posted.Publisher(db, second_bus, poll_seconds=0.01)):
            more = await written(db, 3)
            await eventually(lambda: _at(db, more[-1].seq), timeout=10)
            assert second_bus.published == []  # it stands by
    async with running(posted.Publisher(db, second_bus, poll_seconds=0.01)):
        last = await written(db, 2)  # the first one gone, the second takes over
        await eventually(lambda: _at(db, last[-1].seq), timeout=10)
    assert ids(first_bus.published) == [e.id for e in entries + more]
    assert ids(second_bus.published) == [e.id for e in last]


async def test_a_database_migrated_from_before_starts_at_the_journal_s_head(
    database_url: str, tmp_path: Path
) -> None:
    config = schema.alembic_config(database_url)
    await asyncio.to_thread(command.upgrade, config, "heads")
    await asyncio.to_thread(command.downgrade, config, "banking_0006")
    engine = create_engine(database_url)
    try:
        db = Database(engine)
        entries = await written(db, 3)  # their events went through the outbox then
        await asyncio.to_thread(command.upgrade, config, "heads")
        assert await cursor(db) == entries[-1].seq
    finally:
        await engine.dispose()
