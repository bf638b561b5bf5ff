"""``paycore banking verify`` as an operator runs it, on PostgreSQL: exit status 0 and what it
checked on an intact ledger; status 1 naming the first bad row when an entry's amount was
changed in SQL, when an entry was deleted, and when a stored balance was changed."""

from __future__ import annotations

from pathlib import Path

from banking_kit import tid
from procs import paycore_env, paycore_run
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store
from paycore.banking.ledger.domain import Kind, Limit, Transfer
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database


async def journal(engine: AsyncEngine) -> list[str]:
    """Three accounts and 12 entries: a deposit, a hold and its void or post (entry 6 posts
    301 of a hold of 500), four times; the accounts' ids."""
    db = Database(engine)
    async with db.transaction() as tx:
        now = utcnow()
        source = await ledger.open_account(tx, kind="cash", limit=Limit.NONE, now=now)
        kept = Limit.DEBITS_MUST_NOT_EXCEED_CREDITS
        a = await ledger.open_account(tx, kind="customer", limit=kept, now=now)
        b = await ledger.open_account(tx, kind="customer", limit=kept, now=now)
    transfers = []
    for n in range(4):
        hold = tid()
        transfers += [
            Transfer(tid(), Kind.SINGLE, source, a, 1_000 + n),
            Transfer(hold, Kind.PENDING, a, b, 500),
            Transfer(tid(), Kind.POST, pending_id=hold, amount=300 + n)
            if n % 2
            else Transfer(tid(), Kind.VOID, pending_id=hold),
        ]
    async with db.transaction() as tx:
        applied = await ledger.apply(tx, transfers, utcnow())
    assert all(o.applied for o in applied.outcomes)
    return [source, a, b]


def verify(env: dict[str, str]) -> tuple[int, str]:
    done, took = paycore_run(env, "banking", "verify")
    assert took < 60
    return done.returncode, " ".join((done.stdout + done.stderr).split())


async def test_verify_reports_a_changed_and_a_deleted_entry_and_a_changed_balance(
    engine: AsyncEngine, postgres_url: str, tmp_path: Path
) -> None:
    accounts = await journal(engine)
    env = paycore_env(database_url=postgres_url, data_dir=tmp_path)
    status, said = verify(env)
    assert (status, said) == (
        0,
        "ledger intact: 12 entries chained and hashed, 3 accounts' balances match their "
        "entries, debits equal credits",
    )

    entries = store.entries
    async with engine.begin() as conn:  # someone changes an amount in SQL
        await conn.execute(update(entries).where(entries.c.seq == 6).values(amount=1))
    status, said = verify(env)
    assert status == 1
    assert said.startswith("ledger NOT intact after 5 good entries: entry 6:"), said
    assert "its hash does not match its content" in said
    async with engine.begin() as conn:
        await conn.execute(update(entries).where(entries.c.seq == 6).values(amount=300 + 1))
    assert verify(env)[0] == 0  # put back as it was

    async with engine.begin() as conn:  # someone deletes an entry
        row = (await conn.execute(select(entries).where(entries.c.seq == 7))).one()
        await conn.execute(delete(entries).where(entries.c.seq == 7))
    status, said = verify(env)
    assert status == 1
    assert said.startswith("ledger NOT intact after 6 good entries: entry 8:"), said
    assert "entries are missing" in said
    async with engine.begin() as conn:
        await conn.execute(entries.insert().values(**row._mapping))
    assert verify(env)[0] == 0

    balances = store.balances
    async with engine.begin() as conn:  # a balance changed without its entries
        await conn.execute(
            update(balances)
            .where(balances.c.account_id == accounts[2])
            .values(credits_posted=balances.c.credits_posted + 100)
        )
    status, said = verify(env)
    assert status == 1
    assert f"balances: account {accounts[2]}'s stored balance is not its entries'" in said
