"""Banking's cards on PostgreSQL (migrated to the latest revision), through the real service and
its routes: issue, authorize, capture; concurrent authorizations on one card never spend a cent
more than it has, replays of one id race to one hold, and once a block has answered no
authorization gets past it. The ledger's journal and balances check out afterwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from cards_kit import Bank, data, wired
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.cards.store import authorizations
from paycore.platform.ids import uuid7


@pytest.fixture
async def bank(engine: AsyncEngine) -> AsyncIterator[Bank]:
    async with wired(engine) as wired_bank:
        yield wired_bank


async def test_issue_authorize_capture_on_postgresql(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    held = await bank.approved(card, "60.00")
    captured = await bank.capture(held["id"], "59.99")
    assert captured.status_code == 200, captured.text
    assert data(captured)["captured"] == Decimal("59.99")
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["held"]) == (Decimal("40.01"), 0)
    assert await bank.posted(bank.bank["bank:card-settlement"]) == 5999
    credit = await bank.issue(ana, checking, "credit", credit_limit=300)
    spent = await bank.approved(credit, "299.99")
    assert data(await bank.capture(spent["id"]))["status"] == "captured"
    assert (await bank.card(ana, credit["id"]))["available"] == Decimal("0.01")
    await bank.ledger_whole()


async def test_concurrent_authorizations_never_spend_more_than_the_card_has(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    answers = await asyncio.gather(*(bank.authorize(card, "10.00") for _ in range(40)))
    assert {a.status_code for a in answers} == {201}
    results = Counter(a.json()["result"] for a in answers)
    assert results == {"approved": 10, "insufficient-funds": 30}
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["available"], balance["held"]) == (100, 0, 100)
    await bank.ledger_whole()


async def test_concurrent_replays_of_one_id_make_one_hold(bank: Bank, engine: AsyncEngine) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    auth_id = uuid7()
    answers = await asyncio.gather(*(bank.authorize(card, "7.00", id=auth_id) for _ in range(12)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert (await bank.balance(ana, checking))["held"] == 7
    async with engine.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(authorizations))).scalar()
    assert rows == 1
    captures = await asyncio.gather(*(bank.capture(auth_id, "5.00") for _ in range(8)))
    assert {c.status_code for c in captures} == {200}
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["held"]) == (95, 0)
    await bank.ledger_whole()


async def test_no_authorization_gets_past_a_block_once_it_has_answered(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="1000.00")
    card = await bank.issue(ana, checking)
    block = f"/banking/cards/{card['id']}/block"

    async def blocked_then_authorize() -> list[str]:
        answer = await bank.http.post(block, headers=ana)
        assert answer.status_code == 200
        after = await asyncio.gather(*(bank.authorize(card, "1.00") for _ in range(5)))
        return [a.json()["result"] for a in after]

    racing = [bank.authorize(card, "1.00") for _ in range(20)]
    *before, after = await asyncio.gather(*racing, blocked_then_authorize())
    assert set(after) == {"card-blocked"}
    assert {a.json()["result"] for a in before} <= {"approved", "card-blocked"}
    approved = sum(a.json()["result"] == "approved" for a in before)
    assert (await bank.balance(ana, checking))["held"] == approved
    await bank.ledger_whole()
