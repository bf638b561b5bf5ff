"""The lease (one holder at a time across processes) on PostgreSQL, and on SQLite (one
process: held at once); an exclusive subscription consumed by one consumer at a time."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from paycore.platform.persistence import lease
from paycore.platform.persistence.db import create_engine


async def test_a_second_holder_waits_until_the_first_lets_go(postgres_url: str) -> None:
    first, second = create_engine(postgres_url), create_engine(postgres_url)
    order: list[str] = []
    try:
        async with lease.held(first, "test:one", every=0.05):
            order.append("first took it")

            async def wait_for_it() -> None:
                async with lease.held(second, "test:one", every=0.05):
                    order.append("second took it")

            waiting = asyncio.create_task(wait_for_it())
            await asyncio.sleep(0.5)
            assert not waiting.done()  # held by the first
            order.append("first lets go")
        await asyncio.wait_for(waiting, 5)
        async with lease.held(second, "test:other", every=0.05):  # another name: not held
            order.append("another lease")
    finally:
        await first.dispose()
        await second.dispose()
    assert order == ["first took it", "first lets go", "second took it", "another lease"]


TERMINATE_HOLDERS = text(
    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
    " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
)


async def test_a_holder_whose_connection_dies_loses_the_lease_and_its_work(
    postgres_url: str,
) -> None:
    holder, other = create_engine(postgres_url), create_engine(postgres_url)
    working = asyncio.Event()

    async def forever() -> None:
        working.set()
        await asyncio.sleep(3600)

    async def hold_and_work() -> None:
        async with lease.held(holder, "test:lost", every=0.05) as held:
            await held.guard(forever())

    try:
        holding = asyncio.create_task(hold_and_work())
        await working.wait()
        async with other.connect() as conn:
            await conn.execute(TERMINATE_HOLDERS)
        with pytest.raises(lease.LeaseLost, match="test:lost"):
            await asyncio.wait_for(holding, 5)
        async with asyncio.timeout(5), lease.held(other, "test:lost", every=0.05):
            pass  # free again: the server released it with the session
    finally:
        await holder.dispose()
        await other.dispose()


async def test_on_sqlite_the_lease_is_held_at_once(tmp_path: object) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/lease.db")
    try:
        async with lease.held(engine, "test:one") as first, lease.held(engine, "test:one") as again:
            assert await first.guard(asyncio.sleep(0, "done")) == "done"
            assert again.conn is None
    finally:
        await engine.dispose()


def test_lease_keys_are_stable_64_bit_numbers() -> None:
    key = lease.lease_key("consumer:banking.transfers.banking-ledger")
    assert key == lease.lease_key("consumer:banking.transfers.banking-ledger")
    assert -(2**63) <= key < 2**63
    assert key != lease.lease_key("consumer:other")
