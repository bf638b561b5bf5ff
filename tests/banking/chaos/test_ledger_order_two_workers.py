"""Two ledger workers, and each account's transfers still apply in the order its customer asked
for them: four customers each ask for 250 transfers one after another (each answered before the
next is sent) while two `paycore worker --context banking` run; the one applying them is
SIGKILLed, later the one that took over is too, each started again. The ledger's subscription
is exclusive: one worker at a time holds its lease (a PostgreSQL advisory lock on a connection
of its own, gone with the process), the other stands by and, on taking over, first lets what
the dead one held unacknowledged come back. Afterwards each account's debits stand in the
journal in the order they were asked for, every transfer has one outcome and each balance is
its deposit plus what moved."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path

import httpx
import pytest
from banking_kit import (
    as_customer,
    body,
    deployed,
    deposit_sync,
    open_account_sync,
    sign_up_sync,
)
from procs import paycore_process
from servers import free_port
from sqlalchemy import select

from paycore.banking import store as banking_store
from paycore.banking.ledger import store as ledger_store
from paycore.platform.persistence.db import create_engine

ACCOUNTS = 4
EACH = 250  # transfers asked for by each customer, one after another
DEPOSIT = 50_00
pytestmark = pytest.mark.slow


async def ask_in_turn(
    base: str, secret: str, payer: str, others: list[str], rng: random.Random
) -> list[tuple[str, str, int]]:
    """``EACH`` transfers from ``payer``, each sent once the one before was accepted:
    (id, payee, cents) in the order asked."""
    asked = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for _ in range(EACH):
            transfer_id, payee, cents = (
                str(uuid.uuid4()),
                rng.choice(others),
                rng.randint(100, 1000),
            )
            content = body(id=transfer_id, from_account_id=payer, to_account_id=payee, amount=cents)
            answer = await http.post(
                "/banking/transfers", content=content, headers=as_customer(secret)
            )
            assert answer.status_code == 202, answer.text
            asked.append((transfer_id, payee, cents))
    return asked


async def outcomes(url: str) -> tuple[list[tuple[str, str, str, int]], set[str]]:
    """The requests' journal entries in journal order (id, debit, credit, cents), and the ids
    of the refused."""
    e, r, rejections = ledger_store.entries, banking_store.requests, banking_store.rejections
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = (
                select(e.c.id, e.c.debit_account_id, e.c.credit_account_id, e.c.amount)
                .join_from(e, r, r.c.id == e.c.id)
                .order_by(e.c.seq)
            )
            posted = [tuple(row) for row in await conn.execute(query)]
            refused = set((await conn.execute(select(rejections.c.id))).scalars())
    finally:
        await engine.dispose()
    return posted, refused  # type: ignore[return-value]


async def test_each_accounts_transfers_apply_in_the_order_asked_with_two_workers(
    tmp_path: Path, postgres_url: str
) -> None:
    async with deployed(tmp_path, postgres_url, banking_ledger_batch=20) as bank:
        standby = paycore_process("worker", ["banking"], bank.env, tmp_path, free_port())
        await asyncio.to_thread(standby.start)
        try:
            with httpx.Client(base_url=bank.base, timeout=30) as http:
                secrets = [sign_up_sync(http, n)[1] for n in range(ACCOUNTS)]
                accounts = [open_account_sync(http, secret) for secret in secrets]
                for secret, account in zip(secrets, accounts, strict=True):
                    deposit_sync(http, secret, account, DEPOSIT)
            asking = asyncio.gather(
                *(
                    ask_in_turn(
                        bank.base,
                        secret,
                        account,
                        [a for a in accounts if a != account],
                        random.Random(n),
                    )
                    for n, (secret, account) in enumerate(zip(secrets, accounts, strict=True))
                )
            )
            for victim, share in ((bank.worker, 0.3), (standby, 0.65)):
                while sum(map(len, await outcomes(postgres_url))) < ACCOUNTS * EACH * share:
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(victim.kill)
                await asyncio.sleep(1)
                await asyncio.to_thread(victim.start)
            asked = await asking
            for _ in range(1200):
                posted, refused = await outcomes(postgres_url)
                if len(posted) + len(refused) >= ACCOUNTS * EACH:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(4)  # redeliveries after ack_wait must change nothing
            posted, refused = await outcomes(postgres_url)
            balances = await posted_balances(postgres_url)
        finally:
            await asyncio.to_thread(standby.stop)

    requested = {t[0]: (accounts[n], *t[1:]) for n, mine in enumerate(asked) for t in mine}
    applied = {transfer_id: rest for transfer_id, *rest in posted}
    assert len(posted) == len(applied)  # none twice
    assert applied.keys() | refused == requested.keys()
    assert not applied.keys() & refused
    assert refused  # funds ran short: which transfer was refused depends on the order
    for transfer_id, (debit, credit, cents) in applied.items():
        assert requested[transfer_id] == (debit, credit, cents)
    for account, mine in zip(accounts, asked, strict=True):
        in_order_asked = [t[0] for t in mine if t[0] in applied]
        in_journal = [t[0] for t in posted if t[1] == account]
        assert in_journal == in_order_asked, account
    expected = dict.fromkeys(accounts, DEPOSIT)
    for debit, credit, cents in applied.values():
        expected[debit] -= cents
        expected[credit] += cents
    assert {a: balances[a] for a in accounts} == expected


async def posted_balances(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(ledger_store.balances))
            return {row.account_id: row.credits_posted - row.debits_posted for row in rows}
    finally:
        await engine.dispose()
