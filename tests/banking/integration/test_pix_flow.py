"""Banking's Pix on PostgreSQL (migrated to the latest revision) through banking's API as
``paycore api --context banking`` builds it, its outbox relayed to the broker and the
journal's posted events published by banking's worker: a dynamic charge made by one customer
is paid by another with its copy-and-paste code and partly refunded, the balances and the
ledger's invariants check out, and ``banking.pix.settled``,
``banking.pix.refunded`` and the ledger's ``banking.transfer.posted`` cross the broker once
each; fifty concurrent payments of one dynamic charge make one payment, and concurrent replays
of one end-to-end id one transfer."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from banking_kit import banking_on, eventually, serving, tapped
from pix_kit import PixClient, ledger_whole
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking import messages
from paycore.banking.pix.store import payments
from paycore.platform.persistence.db import create_engine
from paycore.platform.settings import Settings

TOPICS = (messages.POSTED, *messages.PIX_TOPICS)


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str, broker_url: str) -> Settings:
    return banking_on(tmp_path, postgres_url, broker_url)


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the database ``settings`` migrated (not migrated again)."""
    eng = create_engine(postgres_url)
    yield eng
    await eng.dispose()


@pytest.mark.parametrize("broker_url", ["nats", "rabbitmq"], indirect=True)
async def test_a_charge_paid_by_another_customer_and_refunded_on_postgresql(
    settings: Settings, broker_url: str, engine: AsyncEngine
) -> None:
    async with tapped(broker_url, TOPICS) as tap, serving(settings) as http:
        pix = PixClient(http)
        ana, bia = await pix.customer("Ana Lima"), await pix.customer("Bia Souza")
        anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
        charge = await pix.charge(ana, await pix.key(ana, anas), amount="42.50")
        paid = await pix.paid(bia, from_account_id=bias, br_code=charge["br_code"])
        e2e = paid["end_to_end_id"]
        refunded = await pix.refund(ana, e2e, amount="2.50")
        assert refunded.status_code == 201, refunded.text
        rid = refunded.json()["id"]
        assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (40, 60)
        await ledger_whole(engine)

        def mine(topic: str, field: str, value: str) -> list[dict[str, object]]:
            """This test's events on ``topic`` (the broker is the session's: others' are
            there too), each message once."""
            return [e for e in tap.events(topic) if e[field] == value]

        async def crossed() -> bool:
            return bool(mine(messages.PIX_REFUNDED, "id", rid)) and bool(
                mine(messages.POSTED, "id", f"pix-{rid}")
            )

        await eventually(crossed, timeout=20)
        await asyncio.sleep(0.2)  # a second message would have come by now
        [settled] = mine(messages.PIX_SETTLED, "end_to_end_id", e2e)
        assert (settled["amount"], settled["txid"], settled["key"]) == (
            4250,
            charge["txid"],
            charge["key"],
        )
        assert (settled["payer_account_id"], settled["payee_account_id"]) == (bias, anas)
        [returned] = mine(messages.PIX_REFUNDED, "id", rid)
        assert (returned["end_to_end_id"], returned["amount"], returned["refunded"]) == (
            e2e,
            250,
            250,
        )
        [paid_entry] = mine(messages.POSTED, "id", f"pix-{e2e}")
        [refund_entry] = mine(messages.POSTED, "id", f"pix-{rid}")
        assert (paid_entry["code"], paid_entry["amount"]) == ("pix", 4250)
        assert (refund_entry["code"], refund_entry["amount"]) == ("pix-refund", 250)
        assert (refund_entry["debit_account_id"], refund_entry["credit_account_id"]) == (
            anas,
            bias,
        )


@pytest.mark.parametrize("broker_url", ["nats"], indirect=True)
async def test_fifty_concurrent_payments_of_one_dynamic_charge_make_one_payment(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with serving(settings, worker=False) as http:
        pix = PixClient(http)
        ana = await pix.customer("Ana Lima")
        anas = await pix.account(ana)
        charge = await pix.charge(ana, await pix.key(ana, anas), amount="10.00")
        payers = []
        for n in range(5):
            who = await pix.customer(f"Payer {n}")
            payers.append((who, await pix.account(who, deposit="100.00")))
        attempts = [
            pix.pay(who, from_account_id=account, br_code=charge["br_code"])
            for who, account in payers
            for _ in range(10)
        ]
        answers = await asyncio.gather(*attempts)
        outcomes = Counter((a.status_code, a.json().get("code", "paid")) for a in answers)
        assert outcomes == {(201, "paid"): 1, (409, "charge-already-paid"): 49}
        assert await pix.posted(ana, anas) == 10
        balances = [await pix.posted(who, account) for who, account in payers]
        assert sorted(balances) == [90, 100, 100, 100, 100]

        key = await pix.key(ana, anas, "email", key="ana@example.com")
        who, account = payers[0]
        e2e = "E99999999202612061830abcDEF12345"
        replays = await asyncio.gather(
            *(
                pix.pay(who, from_account_id=account, key=key, amount="1.00", end_to_end_id=e2e)
                for _ in range(10)
            )
        )
        assert {a.status_code for a in replays} == {201}
        assert len({a.text for a in replays}) == 1
        assert await pix.posted(ana, anas) == 11
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(payments))).scalar() == 2
    await ledger_whole(engine)
