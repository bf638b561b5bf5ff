"""The ledger's service on each engine (SQLite, then PostgreSQL): accounts, single, two-phase
and linked transfers written to the journal with the balances they leave, replays, refusals,
statements with their running balances (paginated, by time), the balance at an instant,
closing an account only when empty, and ``verify`` finding the journal intact. Holds with a
timeout are released by the worker's expiry loop exactly once, even with two loops running,
and a post after that is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from banking_kit import eventually, tid
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking import metrics, service
from paycore.banking.expiry import Expiry
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store
from paycore.banking.ledger.domain import (
    Applied,
    Balance,
    Kind,
    Limit,
    Reason,
    Status,
    Transfer,
    TransferIdReused,
    TransferRefused,
)
from paycore.banking.ledger.verify import verify
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database

CUSTOMER = Limit.DEBITS_MUST_NOT_EXCEED_CREDITS


async def apply(db: Database, *transfers: Transfer, now: datetime | None = None) -> Applied:
    async with db.transaction() as tx:
        applied = await ledger.apply(tx, transfers, now or utcnow())
        service.counted(tx, applied.outcomes)
    return applied


async def opened(db: Database, limit: Limit = CUSTOMER, kind: str = "customer") -> str:
    async with db.transaction() as tx:
        return await ledger.open_account(tx, kind=kind, limit=limit, now=utcnow())


async def balance(db: Database, account_id: str) -> Balance:
    async with db.connect() as conn:
        row = await store.find_account(conn, account_id)
    assert row is not None
    return store.balance_of(row)


def single(debit: str, credit: str, amount: int, **more: object) -> Transfer:
    given = {"id": tid(), **more}
    return Transfer(kind=Kind.SINGLE, debit_account_id=debit, credit_account_id=credit,
                    amount=amount, **given)  # type: ignore[arg-type]  # fmt: skip


async def test_transfers_balances_and_statements(each_engine: AsyncEngine) -> None:
    db = Database(each_engine)
    async with db.transaction() as tx:
        bank = await ledger.ensure_bank_accounts(tx, service.BANK_ACCOUNTS, utcnow())
    async with db.transaction() as tx:  # a second start finds them
        assert await ledger.ensure_bank_accounts(tx, service.BANK_ACCOUNTS, utcnow()) == bank
    cash = bank[service.CASH.name]
    a, b = await opened(db), await opened(db)

    first = await service.cash_movement(
        db, cash, a, transfer_id=tid(), amount=10_000, deposit=True, now=utcnow()
    )
    assert first.kind is Kind.SINGLE
    assert await balance(db, a) == Balance(credits_posted=10_000)
    assert await balance(db, cash) == Balance(debits_posted=10_000)
    with pytest.raises(TransferRefused) as refused:
        await service.cash_movement(
            db, cash, b, transfer_id=tid(), amount=1, deposit=False, now=utcnow()
        )
    assert refused.value.code == "insufficient-funds"
    with pytest.raises(TransferIdReused):  # the deposit's id, another amount
        await service.cash_movement(
            db, cash, a, transfer_id=first.id, amount=1, deposit=True, now=utcnow()
        )
    replay = await service.cash_movement(
        db, cash, a, transfer_id=first.id, amount=10_000, deposit=True, now=utcnow()
    )
    assert replay == first  # the original entry, nothing written
    instant = utcnow()

    hold, kept, voided = tid(), tid(), tid()
    applied = await apply(
        db,
        single(a, b, 2_500),
        Transfer(hold, Kind.PENDING, a, b, 3_000, timeout_seconds=3600),
        Transfer(voided, Kind.PENDING, a, b, 1_000),
        Transfer(kept, Kind.POST, pending_id=hold, amount=2_000),  # less than held
        Transfer(tid(), Kind.VOID, pending_id=voided),
        Transfer(tid(), Kind.POST, pending_id=hold),  # once only
        single(a, b, 1, linked=True),
        single(a, b, 10**9),  # refused: the chain with it
    )
    results = [o.reason.value if o.reason else "created" for o in applied.outcomes]
    assert results == [
        "created",
        "created",
        "created",
        "created",
        "created",
        "pending-transfer-already-posted",
        "linked-event-failed",
        "insufficient-funds",
    ]
    assert await balance(db, a) == Balance(debits_posted=4_500, credits_posted=10_000)
    assert await balance(db, b) == Balance(credits_posted=4_500)
    again = await apply(db, single(a, b, 2_500, id=applied.outcomes[0].transfer_id))
    assert again.outcomes[0].replay

    # the statement: oldest first, the running balance on each line, in pages, by time
    async with db.connect() as conn:
        lines = await store.statement(conn, a, since=None, until=None, after_seq=None, limit=100)
        kinds = [Kind.SINGLE, Kind.SINGLE, Kind.PENDING, Kind.PENDING, Kind.POST, Kind.VOID]
        assert [e.kind for e in lines] == kinds
        assert [ledger.side_of(e, a).available(CUSTOMER) for e in lines] == [
            10_000,
            7_500,
            4_500,
            3_500,
            4_500,
            5_500,
        ]
        page = await store.statement(
            conn, a, since=None, until=None, after_seq=lines[1].seq, limit=2
        )
        assert page == lines[2:4]
        later = await store.statement(conn, a, since=instant, until=None, after_seq=None, limit=9)
        assert later == lines[1:]
        assert (
            await store.statement(conn, a, since=None, until=instant, after_seq=None, limit=9)
            == lines[:1]
        )
        assert await ledger.balance_at(conn, a, instant) == Balance(credits_posted=10_000)
        assert await ledger.balance_at(conn, a, instant - timedelta(days=1)) == Balance()
        report = await verify(conn)
    assert report.ok, report.problem
    assert report.entries == 6

    # an account closes only when empty, and then takes nothing
    async with db.transaction() as tx:
        with pytest.raises(ledger.AccountNotEmpty):
            await ledger.set_status(tx, b, Status.CLOSED, utcnow())
    await apply(db, single(b, a, 4_500))
    async with db.transaction() as tx:
        await ledger.set_status(tx, b, Status.CLOSED, utcnow())
    async with db.transaction() as tx:
        with pytest.raises(ledger.AccountClosed):
            await ledger.set_status(tx, b, Status.OPEN, utcnow())
    [outcome] = (await apply(db, single(a, b, 1))).outcomes
    assert outcome.reason is Reason.ACCOUNT_CLOSED
    async with db.connect() as conn:
        assert (await verify(conn)).ok


class CountingClock:
    """The expiry loop's clock: it is read once per pass, so the calls count the passes."""

    def __init__(self) -> None:
        self.passes = 0

    def __call__(self) -> datetime:
        self.passes += 1
        return utcnow()


@contextlib.asynccontextmanager
async def looping(*loops: Expiry) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def expired_count() -> float:
    labels = {"kind": "expire", "outcome": "applied"}
    return REGISTRY.get_sample_value("paycore_banking_transfers_total", labels) or 0.0


async def test_a_hold_expires_once_at_its_time(each_engine: AsyncEngine) -> None:
    db = Database(each_engine)
    source, a, b = await opened(db, Limit.NONE, "cash"), await opened(db), await opened(db)
    await apply(db, single(source, a, 5_000))
    hold, untimed = tid(), tid()
    await apply(
        db,
        Transfer(hold, Kind.PENDING, a, b, 1_200, timeout_seconds=1),
        Transfer(untimed, Kind.PENDING, a, b, 300),
    )
    assert (await balance(db, a)).available(CUSTOMER) == 3_500
    counted = expired_count()
    clocks = [CountingClock(), CountingClock()]
    workers = [Expiry(db, poll_seconds=0.05, clock=clock) for clock in clocks]  # two workers

    async def released() -> object:
        async with db.connect() as conn:
            return await store.resolution_of(conn, hold)

    metrics.held.set(-1)

    async def held_looked_at() -> bool:  # the loops' first pass, before the hold's time
        return REGISTRY.get_sample_value("paycore_banking_held_cents") == 1_500

    async with looping(*workers):
        await eventually(held_looked_at)
        await eventually(released, timeout=30)
        marks = [clock.passes for clock in clocks]

        async def passed_again() -> bool:  # each loop looked again, several times
            return all(c.passes >= m + 3 for c, m in zip(clocks, marks, strict=True))

        await eventually(passed_again)
    async with db.connect() as conn:
        entry = await store.resolution_of(conn, hold)
        assert entry is not None
        assert (entry.kind, entry.id, entry.amount) == (Kind.EXPIRE, f"expiry-{hold}", 1_200)
        held = await store.find_entry(conn, hold)
        assert held is not None
        assert held.expires_at is not None
        assert entry.at >= held.expires_at  # not before its time
        query = (
            select(func.count()).select_from(store.entries).where(store.entries.c.kind == "expire")
        )
        assert await conn.scalar(query) == 1  # once, though two loops ran
        assert await store.resolution_of(conn, untimed) is None  # no timeout: held still
    assert expired_count() == counted + 1
    assert await balance(db, a) == Balance(debits_pending=300, credits_posted=5_000)

    [late] = (await apply(db, Transfer(tid(), Kind.POST, pending_id=hold))).outcomes
    assert late.reason is Reason.PENDING_TRANSFER_EXPIRED
    async with db.connect() as conn:
        assert (await verify(conn)).ok


async def test_a_hold_is_posted_until_its_time_and_refused_from_then_on(
    each_engine: AsyncEngine,
) -> None:
    db = Database(each_engine)
    source, a, b = await opened(db, Limit.NONE, "cash"), await opened(db), await opened(db)
    await apply(db, single(source, a, 200))
    early, due = tid(), tid()
    start = utcnow()
    await apply(
        db,
        Transfer(early, Kind.PENDING, a, b, 100, timeout_seconds=1),
        Transfer(due, Kind.PENDING, a, b, 100, timeout_seconds=1),
        now=start,
    )
    [posted] = (
        await apply(
            db, Transfer(tid(), Kind.POST, pending_id=early), now=start + timedelta(seconds=0.5)
        )
    ).outcomes
    assert posted.applied
    [late] = (  # not yet released by the expiry loop: refused all the same
        await apply(
            db, Transfer(tid(), Kind.POST, pending_id=due), now=start + timedelta(seconds=1)
        )
    ).outcomes
    assert late.reason is Reason.PENDING_TRANSFER_EXPIRED
    assert await balance(db, b) == Balance(credits_pending=100, credits_posted=100)
