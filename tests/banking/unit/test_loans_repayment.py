"""A loan repaid, over HTTP in process on a real SQLite file, with the scheduled collection run
at dates of the test's choosing: the next instalment paid on request (its principal to
``bank:loans``, its interest to ``bank:loan-interest``, both or neither), insufficient funds a
422 with the ledger's reason and nothing moved; the scheduled run paying instalments on their
due dates, in order, marking one overdue while funds are short (one event) and paying it once
they are there; an early payoff charging the outstanding principal, the loan closed; the last
instalment closing a loan; another's loan a 404. Every centavo accounted for, the ledger
whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cards_kit import data
from loans_kit import Lender, statuses, wired
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.domain import Status
from paycore.banking.loans import messages
from paycore.banking.loans.schedule import add_months
from paycore.platform.clock import utcnow

D = Decimal


@pytest.fixture
async def bank(engine: AsyncEngine) -> AsyncIterator[Lender]:
    async with wired(engine) as lender:
        yield lender


@pytest.fixture
async def loan(bank: Lender) -> dict[str, Any]:
    """Ana's loan of 1,000.00 in 3 Price instalments (346.69, 346.69, 346.68), paid out into
    an account holding 100.00 besides; her headers and the account."""
    ana = await bank.customer()
    checking = await bank.account(ana, deposit=100_00)
    chosen = await bank.applied(ana, checking, principal=1000, term=3)
    await bank.decide()
    statement = await read(bank, ana, chosen)
    assert statement["status"] == "active"
    return {"id": chosen, "who": ana, "account": checking, "iof": statement["iof"]}


async def read(bank: Lender, who: dict[str, str], loan_id: str) -> dict[str, Any]:
    answer = await bank.http.get(f"/banking/loans/{loan_id}", headers=who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = data(answer)
    return found


async def pay(bank: Lender, loan: dict[str, Any], what: str = "payments") -> httpx.Response:
    return await bank.http.post(f"/banking/loans/{loan['id']}/{what}", headers=loan["who"])


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


def due(n: int) -> date:
    return add_months(utcnow().date(), n)


async def test_the_next_instalment_is_paid_on_request_principal_and_interest_apart(
    bank: Lender, loan: dict[str, Any]
) -> None:
    before = await bank.posted(loan["account"])
    answer = await pay(bank, loan)
    assert answer.status_code == 201, answer.text
    statement = data(answer)
    first = statement["installments"][0]
    assert (first["status"], first["paid_by"]) == ("paid", "request")
    assert (first["paid_principal"], first["paid_interest"]) == (D("326.79"), D("19.90"))
    assert statuses(statement) == ["paid", "due", "due"]
    assert (statement["outstanding"], statement["paid"]) == (D("673.21"), D("346.69"))
    assert statement["next_installment"]["number"] == 2
    assert await bank.posted(loan["account"]) == before - 346_69
    assert await bank.posted(bank.bank["bank:loan-interest"]) == 19_90
    assert await bank.posted(bank.bank["bank:loans"]) == -67_321
    second = data(await pay(bank, loan))
    assert statuses(second) == ["paid", "paid", "due"]
    [event, _] = await bank.events(messages.INSTALLMENT_PAID)
    assert (event["number"], event["principal"], event["interest"], event["by"]) == (
        1,
        32_679,
        19_90,
        "request",
    )
    await bank.ledger_whole()


async def test_insufficient_funds_is_a_422_and_moves_nothing_not_even_the_principal(
    bank: Lender, loan: dict[str, Any]
) -> None:
    held = await bank.posted(loan["account"])
    # leave what pays the principal of the first instalment (326.79) but not its interest
    await bank.move(loan["account"], held - 326_79, deposit=False)
    answer = await pay(bank, loan)
    assert answer.status_code == 422, answer.text
    refused = answer.json()
    assert refused["code"] == "insufficient-funds"
    assert refused["detail"].endswith("has 326.79 BRL available; instalment 1 takes 346.69")
    assert await bank.posted(loan["account"]) == 326_79
    assert await bank.posted(bank.bank["bank:loan-interest"]) == 0
    assert statuses(await read(bank, loan["who"], loan["id"])) == ["due"] * 3
    await bank.ledger_whole()


async def test_a_blocked_account_pays_nothing(bank: Lender, loan: dict[str, Any]) -> None:
    async with bank.db.transaction() as tx:
        await ledger.set_status(tx, loan["account"], Status.BLOCKED, utcnow())
    answer = await pay(bank, loan)
    assert (answer.status_code, answer.json()["code"]) == (422, "account-blocked")
    answer = await pay(bank, loan, "payoff")
    assert (answer.status_code, answer.json()["code"]) == (422, "account-blocked")


async def test_the_scheduled_run_pays_instalments_on_their_due_dates_in_order(
    bank: Lender, loan: dict[str, Any]
) -> None:
    assert (await bank.collect(_after(-1))).paid == 0  # the day before its due date
    midnight = await bank.collect(datetime.combine(due(1), time(0), tzinfo=UTC))
    assert midnight.paid == 1  # from the first instant of its due date (UTC)
    assert (await bank.collect(noon(due(1)))).paid == 0  # the next one is not due yet
    statement = await read(bank, loan["who"], loan["id"])
    assert statuses(statement) == ["paid", "due", "due"]
    assert statement["installments"][0]["paid_by"] == "schedule"
    late = await bank.collect(noon(due(3)))  # two months behind: both, in order
    assert (late.paid, late.short) == (2, 0)
    closed = await read(bank, loan["who"], loan["id"])
    assert (closed["status"], closed["outstanding"], closed["next_installment"]) == (
        "paid",
        0,
        None,
    )
    assert closed["closed_at"] is not None
    assert closed["paid"] == D("1040.06")  # 346.69 + 346.69 + 346.68
    [event] = await bank.events(messages.CLOSED)
    assert (event["id"], event["status"]) == (loan["id"], "paid")
    assert await bank.posted(bank.bank["bank:loans"]) == 0  # the whole principal is back
    assert (await pay(bank, loan)).json()["code"] == "loan-closed"
    await bank.ledger_whole()


async def test_an_instalment_is_overdue_while_funds_are_short_and_paid_once_they_are_there(
    bank: Lender, loan: dict[str, Any]
) -> None:
    await bank.move(loan["account"], await bank.posted(loan["account"]) - 100_00, deposit=False)
    for days in (0, 1):  # tried on its due date, and again the day after
        short = await bank.collect(_after(days))
        assert (short.paid, short.short) == (0, 1)
    statement = await read(bank, loan["who"], loan["id"])
    first = statement["installments"][0]
    assert (first["status"], first["failure"]) == ("overdue", "insufficient-funds")
    assert await bank.posted(loan["account"]) == 100_00  # nothing taken
    [overdue] = await bank.events(messages.INSTALLMENT_OVERDUE)  # said once
    assert (overdue["number"], overdue["reason"]) == (1, "insufficient-funds")
    await bank.move(loan["account"], 300_00, deposit=True)
    paid = await bank.collect(_after(2))
    assert (paid.paid, paid.short) == (1, 0)
    first = (await read(bank, loan["who"], loan["id"]))["installments"][0]
    assert (first["status"], first["paid_by"], first["failure"]) == ("paid", "schedule", None)
    assert await bank.posted(loan["account"]) == 400_00 - 346_69
    await bank.ledger_whole()


def _after(days: int) -> datetime:
    """Noon of the first instalment's due date plus ``days``."""
    return noon(date.fromordinal(due(1).toordinal() + days))


async def test_a_payoff_charges_the_outstanding_principal_and_closes_the_loan(
    bank: Lender, loan: dict[str, Any]
) -> None:
    assert (await pay(bank, loan)).status_code == 201
    held = await bank.posted(loan["account"])
    answer = await pay(bank, loan, "payoff")
    assert answer.status_code == 201, answer.text
    statement = data(answer)
    assert (statement["status"], statement["outstanding"]) == ("paid-off", 0)
    assert statuses(statement) == ["paid", "prepaid", "prepaid"]
    waived = statement["installments"][1]
    assert (waived["paid_principal"], waived["paid_interest"], waived["paid_by"]) == (
        D("333.29"),
        0,
        "payoff",
    )
    assert await bank.posted(loan["account"]) == held - 673_21  # the principal, no interest
    assert await bank.posted(bank.bank["bank:loans"]) == 0
    assert await bank.posted(bank.bank["bank:loan-interest"]) == 19_90  # the first one's only
    assert statement["paid"] == D("1019.90")
    again = await pay(bank, loan, "payoff")
    assert (again.status_code, again.json()["code"]) == (409, "loan-closed")
    [listed] = data(await bank.http.get("/banking/loans", headers=loan["who"]))
    assert (listed["status"], listed["next_installment"]) == ("paid-off", None)
    await bank.ledger_whole()


async def test_a_payoff_after_a_due_date_charges_that_instalments_interest(
    bank: Lender, loan: dict[str, Any]
) -> None:
    await bank.move(loan["account"], await bank.posted(loan["account"]) - 100_00, deposit=False)
    assert (await bank.collect(_after(0))).short == 1  # the first one is overdue
    await bank.move(loan["account"], 1000_00, deposit=True)
    customer = (await bank.http.get("/banking/customer", headers=loan["who"])).json()
    loans = bank.lending()
    await loans.pay_off(customer["id"], loan["id"], _after(3))
    statement = await read(bank, loan["who"], loan["id"])
    assert statuses(statement) == ["paid", "prepaid", "prepaid"]
    assert await bank.posted(loan["account"]) == 1100_00 - 1000_00 - 19_90
    assert await bank.posted(bank.bank["bank:loan-interest"]) == 19_90
    await bank.ledger_whole()


async def test_a_one_instalment_loan_closes_when_it_is_paid(bank: Lender) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit=50_00)
    chosen = await bank.applied(ana, checking, principal=500, term=1)
    await bank.decide()
    statement = data(await bank.http.post(f"/banking/loans/{chosen}/payments", headers=ana))
    assert (statement["status"], statuses(statement)) == ("paid", ["paid"])
    assert statement["paid"] == D("509.95")  # 500.00 and 1.99 % of it
    await bank.ledger_whole()


async def test_anothers_loan_is_not_found(bank: Lender, loan: dict[str, Any]) -> None:
    bia = await bank.customer("Bia Souza")
    for answer in (
        await bank.http.get(f"/banking/loans/{loan['id']}", headers=bia),
        await bank.http.post(f"/banking/loans/{loan['id']}/payments", headers=bia),
        await bank.http.post(f"/banking/loans/{loan['id']}/payoff", headers=bia),
    ):
        assert (answer.status_code, answer.json()["code"]) == (404, "not-found")
    assert data(await bank.http.get("/banking/loans", headers=bia)) == []
    assert statuses(await read(bank, loan["who"], loan["id"])) == ["due"] * 3
