"""2,000 transfers asked for over HTTP among a few accounts (some for more than the account
holds, some to an account that does not exist) while the ledger worker is SIGKILLed twice and
restarted: afterwards every request has exactly one outcome, an entry in the journal or a
refusal; each account holds its deposit plus what the test's own record of the posted transfers
moves; every balance is the sum of its entries, debits equal credits and `paycore banking
verify` passes; the broker holds one event per outcome and nothing became a dead letter."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import nats
import pytest
from banking_kit import (
    as_customer,
    body,
    deployed,
    deposit_sync,
    open_account_sync,
    sign_up_sync,
    transfer_outcomes,
)
from procs import paycore_run
from sqlalchemy import func, select

from paycore.banking import messages
from paycore.banking.ledger import store as ledger_store
from paycore.platform.messaging.brokers.nats import stream_name
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine

COUNT = 2_000
ACCOUNTS = 5
DEPOSIT = 200_00  # cents, into each account
pytestmark = pytest.mark.slow

Planned = tuple[int, str, int]  # the paying account's index, the receiving account, cents


def plan(accounts: list[str]) -> dict[str, Planned]:
    """The transfers to ask for, by id: between the accounts, of 1.00 to 80.00 (the five
    accounts hold 1,000.00 between them, so many are refused for want of funds), and one in
    fifty to an account that does not exist."""
    rng = random.Random(19)
    planned = {}
    for _ in range(COUNT):
        payer = rng.randrange(ACCOUNTS)
        payee = str(uuid.uuid4()) if rng.random() < 0.02 else rng.choice(accounts)
        if payee == accounts[payer]:
            payee = accounts[(payer + 1) % ACCOUNTS]
        planned[str(uuid.uuid4())] = (payer, payee, rng.randint(100, 8000))
    return planned


async def submit(
    base: str, secrets: list[str], accounts: list[str], planned: dict[str, Planned]
) -> None:
    """POST every planned transfer (32 at a time); each must be accepted."""
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one(transfer_id: str, payer: int, payee: str, cents: int) -> None:
            content = body(
                id=transfer_id, from_account_id=accounts[payer], to_account_id=payee, amount=cents
            )
            async with gate:
                answer = await http.post(
                    "/banking/transfers", content=content, headers=as_customer(secrets[payer])
                )
            assert answer.status_code == 202, answer.text
            assert answer.json()["id"] == transfer_id

        await asyncio.gather(*(one(i, *p) for i, p in planned.items()))


async def outcome_count(url: str) -> int:
    posted, refused = await transfer_outcomes(url)
    return len(posted) + len(refused)


async def ledger_sums(url: str) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, int], int]:
    """Each account's stored balance (pending and posted debits and credits), each account's
    posted credits less debits as summed from the journal, and the dead letters."""
    e = ledger_store.entries.c
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            stored = {
                row.account_id: (
                    row.debits_pending,
                    row.debits_posted,
                    row.credits_pending,
                    row.credits_posted,
                )
                for row in await conn.execute(select(ledger_store.balances))
            }
            summed: Counter[str] = Counter()
            for account, total in await conn.execute(
                select(e.credit_account_id, func.sum(e.amount)).group_by(e.credit_account_id)
            ):
                summed[account] += int(total)
            for account, total in await conn.execute(
                select(e.debit_account_id, func.sum(e.amount)).group_by(e.debit_account_id)
            ):
                summed[account] -= int(total)
            letters = await conn.scalar(select(func.count()).select_from(dead_letters))
    finally:
        await engine.dispose()
    return stored, dict(summed), int(letters or 0)


async def stream_sizes(url: str) -> dict[str, int]:
    client = await nats.connect(url)
    js = client.jetstream()
    sizes = {
        topic: (await js.stream_info(stream_name(topic))).state.messages
        for topic in messages.TOPICS
    }
    await client.close()
    return sizes


async def test_killing_the_ledger_worker_applies_every_transfer_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    kills = 0
    # small batches: a kill is likely to land inside one
    async with deployed(tmp_path, postgres_url, banking_ledger_batch=50) as bank:
        with httpx.Client(base_url=bank.base, timeout=30) as http:
            secrets = [sign_up_sync(http, n)[1] for n in range(ACCOUNTS)]
            accounts = [open_account_sync(http, secret) for secret in secrets]
            for secret, account in zip(secrets, accounts, strict=True):
                deposit_sync(http, secret, account, DEPOSIT)
        planned = plan(accounts)
        submitting = asyncio.create_task(submit(bank.base, secrets, accounts, planned))
        for share in (0.3, 0.65):
            while await outcome_count(postgres_url) < COUNT * share:
                assert not submitting.done() or submitting.exception() is None
                await asyncio.sleep(0.02)
            await asyncio.to_thread(bank.worker.kill)
            kills += 1
            await asyncio.sleep(0.5)
            await asyncio.to_thread(bank.worker.start)
        await submitting
        deadline = time.monotonic() + 180
        while await outcome_count(postgres_url) < COUNT:
            assert time.monotonic() < deadline, bank.worker.log_tail()
            await asyncio.sleep(0.2)
        await asyncio.sleep(5)  # redeliveries after ack_wait must change nothing
        posted, refused = await transfer_outcomes(postgres_url)
        sizes = await stream_sizes(bank.broker.url)
        with httpx.Client(base_url=bank.base, timeout=30) as http:
            statuses = Counter(
                http.get(f"/banking/transfers/{i}", headers=as_customer(secrets[p[0]])).json()[
                    "status"
                ]
                for i, p in planned.items()
            )
    verified, _ = await asyncio.to_thread(paycore_run, bank.env, "banking", "verify")
    stored, summed, letters = await ledger_sums(postgres_url)

    assert kills == 2
    # every request has exactly one outcome, and says so
    assert not posted.keys() & refused.keys()
    assert posted.keys() | refused.keys() == planned.keys()
    assert statuses == {"posted": len(posted), "rejected": len(refused)}
    assert 0 < len(refused) < COUNT / 2  # both outcomes happened
    for transfer_id, (payer, payee, cents) in planned.items():
        if transfer_id in posted:
            assert posted[transfer_id] == (accounts[payer], payee, cents)
        elif payee not in accounts:
            assert refused[transfer_id] == "credit-account-not-found"
        else:
            assert refused[transfer_id] == "insufficient-funds"
    # each account holds what the posted transfers, each applied once, leave it
    expected = dict.fromkeys(accounts, DEPOSIT)
    for transfer_id, (payer, payee, cents) in planned.items():
        if transfer_id in posted:
            expected[accounts[payer]] -= cents
            expected[payee] += cents
    for account in accounts:
        debits_pending, debits_posted, credits_pending, credits_posted = stored[account]
        assert (debits_pending, credits_pending) == (0, 0)
        assert credits_posted - debits_posted == expected[account] >= 0
    # the stored balances are the journal's sums, and debits equal credits
    assert {a: s[3] - s[1] for a, s in stored.items()} == {a: summed.get(a, 0) for a in stored}
    assert sum(s[1] for s in stored.values()) == sum(s[3] for s in stored.values())
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger intact" in verified.stderr  # the console writes to stderr
    # one event per request and per outcome on the broker (deposits are posted too)
    assert sizes == {
        messages.REQUESTS: COUNT,
        messages.POSTED: len(posted) + ACCOUNTS,
        messages.REJECTED: len(refused),
    }
    assert letters == 0
