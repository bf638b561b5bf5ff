"""500 Pix payments from ten customers to one key while the API that settles them (a Pix
payment is settled in its request, under the ledger's lock: ADR 0015) is SIGKILLed twice and
restarted. Each payer retries a payment that got no answer with the same end-to-end id, as a
Pix participant does; afterwards every payment is settled exactly once (one journal entry per
end-to-end id, one ``banking.pix.settled`` event each), every balance is exact, the stored
balances are the journal's and ``paycore banking verify`` passes."""

from __future__ import annotations

import asyncio
import random
import string
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import pytest
from banking_kit import as_customer, deployed, deposit_sync, open_account_sync, sign_up_sync
from procs import paycore_run
from sqlalchemy import func, select

from paycore.banking import messages
from paycore.banking.ledger import store as ledger_store
from paycore.platform.messaging.brokers.nats import stream_name
from paycore.platform.persistence.db import create_engine

PAYERS = 10
COUNT = 500
FUNDS = 5_000_000  # cents each payer deposits: more than their 50 payments can take
pytestmark = pytest.mark.slow


def end_to_end_id(ispb: str, rng: random.Random) -> str:
    """A Pix end-to-end id: E, the ISPB, the minute (UTC), 11 letters and digits."""
    minute = datetime.now(UTC).strftime("%Y%m%d%H%M")
    tail = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(11))
    return f"E{ispb}{minute}{tail}"


async def settled(url: str) -> dict[str, tuple[str, str, int]]:
    """The journal's Pix entries by transfer id: debit, credit, amount."""
    e = ledger_store.entries.c
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(e.id, e.debit_account_id, e.credit_account_id, e.amount).where(
                e.code == "pix"
            )
            return {
                r.id: (r.debit_account_id, r.credit_account_id, r.amount)
                for r in await conn.execute(query)
            }
    finally:
        await engine.dispose()


async def balances(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Each account's posted credits less debits: as stored, and as the journal sums them."""
    e = ledger_store.entries.c
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            stored = {
                r.account_id: r.credits_posted - r.debits_posted
                for r in await conn.execute(select(ledger_store.balances))
            }
            summed: Counter[str] = Counter()
            query = select(e.debit_account_id, e.credit_account_id, func.sum(e.amount)).group_by(
                e.debit_account_id, e.credit_account_id
            )
            for debit, credit, amount in await conn.execute(query):
                summed[credit] += int(amount)
                summed[debit] -= int(amount)
    finally:
        await engine.dispose()
    return stored, dict(summed)


async def pay_all(
    base: str, payments: list[tuple[str, str, str, int]], key: str, answered: Counter[int]
) -> None:
    """Each payment (end-to-end id, payer's secret, payer's account, cents), eight at a time,
    asked again with the same end-to-end id until it is answered: a connection cut by the
    kill, or a 5xx, is no answer."""
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:

        async def one(e2e: str, secret: str, account: str, cents: int) -> None:
            body = (
                f'{{"from_account_id":"{account}","key":"{key}",'
                f'"amount":{cents / 100:.2f},"end_to_end_id":"{e2e}"}}'
            )
            async with gate:
                for _ in range(600):
                    try:
                        answer = await http.post(
                            "/banking/pix/payments", content=body, headers=as_customer(secret)
                        )
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                        continue
                    if answer.status_code < 500:
                        assert answer.status_code in (200, 201), answer.text
                        answered[answer.status_code] += 1
                        return
                    await asyncio.sleep(0.1)
                raise AssertionError(f"payment {e2e} never answered")

        await asyncio.gather(*(one(*p) for p in payments))


def open_up(base: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    """The payee's account and its random key, the bank's ISPB as the key's lookup shows it,
    and the payers (secret, funded account)."""
    with httpx.Client(base_url=base, timeout=30) as http:
        _, payee = sign_up_sync(http, 800)
        payee_account = open_account_sync(http, payee)
        registered = http.post(
            "/banking/pix/keys",
            json={"account_id": payee_account, "kind": "evp"},
            headers=as_customer(payee),
        )
        assert registered.status_code == 201, registered.text
        key = registered.json()["key"]
        owner = http.get(f"/banking/pix/keys/{key}", headers=as_customer(payee)).json()["owner"]
        payers = []
        for n in range(PAYERS):
            _, secret = sign_up_sync(http, 801 + n)
            account = open_account_sync(http, secret)
            deposit_sync(http, secret, account, FUNDS)
            payers.append((secret, account))
    return payee_account, key, owner["ispb"], payers


async def test_killing_the_api_settles_every_pix_payment_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    rng = random.Random(21)
    async with deployed(tmp_path, postgres_url) as bank:
        payee_account, key, ispb, payers = await asyncio.to_thread(open_up, bank.base)
        payments = [
            (end_to_end_id(ispb, rng), *payers[n % PAYERS], rng.randint(1, 50_000))
            for n in range(COUNT)
        ]
        answered: Counter[int] = Counter()
        paying = asyncio.create_task(pay_all(bank.base, payments, key, answered))
        kills = 0
        for share in (0.3, 0.65):
            while len(await settled(postgres_url)) < COUNT * share:
                assert not paying.done() or paying.exception() is None
                await asyncio.sleep(0.01)
            await asyncio.to_thread(bank.api.kill)
            kills += 1
            await asyncio.to_thread(bank.api.start)
        await paying
        await asyncio.sleep(2)  # the restarted API relays what the killed one left unsent
        client = await nats.connect(bank.broker.url)
        info = await client.jetstream().stream_info(stream_name(messages.PIX_SETTLED))
        await client.close()
    verified, _ = await asyncio.to_thread(paycore_run, bank.env, "banking", "verify")
    found = await settled(postgres_url)
    stored, summed = await balances(postgres_url)

    assert kills == 2
    assert sum(answered.values()) == COUNT
    # every payment settled once, from its payer to the key's account, for its amount
    assert found == {
        f"pix-{e2e}": (account, payee_account, cents) for e2e, _, account, cents in payments
    }
    assert info.state.messages == COUNT  # one settled event each, whatever was retried
    paid: Counter[str] = Counter()
    for _, _, account, cents in payments:
        paid[account] += cents
    for _, account in payers:
        assert stored[account] == FUNDS - paid[account]
    assert stored[payee_account] == sum(paid.values())
    assert {a: b for a, b in stored.items() if b} == {a: b for a, b in summed.items() if b}
    assert verified.returncode == 0, verified.stdout + verified.stderr
