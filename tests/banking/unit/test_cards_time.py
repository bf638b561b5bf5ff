"""Banking's cards as time passes (the use cases called with the time they happen at): a hold
not captured in time is refused a capture or void and released by the ledger worker's expiry,
once; a card past its expiry month is declined."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from cards_kit import Bank, wired
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.cards.domain import AuthorizationStatus, Expiry
from paycore.banking.cards.network import Presented
from paycore.banking.cards.views import authorization_view
from paycore.banking.expiry import Expiry as HoldExpiry
from paycore.banking.ledger.domain import Reason, TransferRefused
from paycore.platform.clock import utcnow
from paycore.platform.ids import uuid7

HOUR = 3600


@pytest.fixture
async def bank(engine: AsyncEngine) -> AsyncIterator[Bank]:
    async with wired(engine, hold_seconds=HOUR) as wired_bank:
        yield wired_bank


def presented(card: dict[str, Any], amount: int, **changes: Any) -> Presented:
    fields: dict[str, Any] = {
        "id": uuid7(),
        "number": card["full_number"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "cvv": card["cvv"],
        "amount": amount,
        "currency": "BRL",
        "merchant": "Posto Ipiranga",
        **changes,
    }
    return Presented(**fields)


async def test_a_hold_not_captured_in_time_is_released_once_and_never_captured(
    bank: Bank,
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    start = utcnow()
    late = await bank.network.authorize(presented(card, 4000), start)
    kept = await bank.network.authorize(presented(card, 1000), start)
    assert late.outcome == kept.outcome == "approved"
    assert late.expires_at == start + timedelta(seconds=HOUR)
    assert (await bank.balance(ana, checking))["available"] == 50

    just_in_time = start + timedelta(seconds=HOUR - 1)
    await bank.network.capture(kept.id, None, just_in_time)
    after = start + timedelta(seconds=HOUR)
    row = await bank.network.authorization(late.id)
    assert authorization_view(row, after)["status"] == AuthorizationStatus.EXPIRED  # not released
    for attempt in (bank.network.capture(late.id, 100, after), bank.network.void(late.id, after)):
        with pytest.raises(TransferRefused) as refused:
            await attempt
        assert refused.value.reason is Reason.PENDING_TRANSFER_EXPIRED

    expiry = HoldExpiry(bank.db, poll_seconds=1)
    assert await expiry.once(None, after) == (1, False)
    assert await expiry.once(None, after + timedelta(hours=1)) == (0, False)  # once
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["available"], balance["held"]) == (90, 90, 0)
    view = authorization_view(await bank.network.authorization(late.id), after)
    assert view["status"] == "expired"
    assert view["resolved_at"] is not None
    assert view["captured"] is None
    with pytest.raises(TransferRefused) as refused:
        await bank.network.capture(late.id, None, after + timedelta(hours=2))
    assert refused.value.reason is Reason.PENDING_TRANSFER_EXPIRED
    await bank.ledger_whole()


async def test_a_card_past_its_expiry_month_is_declined(bank: Bank) -> None:
    ana = await bank.customer()
    card = await bank.issue(ana, await bank.account(ana, deposit="100.00"))
    expiry = Expiry(card["exp_month"], card["exp_year"])
    last_moment = utcnow().replace(year=expiry.year, month=expiry.month, day=28)
    on_time = await bank.network.authorize(presented(card, 100), last_moment)
    assert on_time.outcome == "approved"
    next_month = (last_moment.replace(day=1) + timedelta(days=32)).replace(day=1)
    declined = await bank.network.authorize(presented(card, 100), next_month)
    assert (declined.outcome, declined.hold_id) == ("card-expired", None)
