"""Banking's loans as customers use them, over HTTP in process, on a real SQLite file, with the
banking worker's consumer and scheduled collection driven by hand: a simulation is the
command's JSON at the bank's rate; an application is accepted (202, submitted, its event in
the outbox) and every bad input refused with a 4xx naming the field, nothing written; the
worker disburses it with its plan, or rejects it by the rule with the reason; instalments paid
on request (both parts or neither, insufficient funds a 422 with the ledger's reason), by the
scheduled run on their due dates (overdue while funds are short), and an early payoff. After
each flow the ledger's journal and balances check out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from cards_kit import data
from loans_kit import POLICY, Lender, statuses, wired
from memory_bus import MemoryBus
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from unit_fixtures import Cli
from web_kit import problem

from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.domain import Status
from paycore.banking.ledger.store import entries
from paycore.banking.loans import consumers, messages
from paycore.banking.loans.schedule import add_months
from paycore.banking.loans.service import bank_accounts
from paycore.banking.loans.store import applications, loans
from paycore.platform.clock import utcnow
from paycore.platform.ids import uuid7
from paycore.platform.messaging.bus import Delivery
from paycore.platform.messaging.consumer import Consumer
from paycore.platform.messaging.deadletters import dead_letters

D = Decimal
Rows = Callable[..., Awaitable[int]]


@pytest.fixture
async def bank(engine: AsyncEngine) -> AsyncIterator[Lender]:
    async with wired(engine) as lender:
        yield lender


# --- simulation ----------------------------------------------------------------------------


async def test_a_simulation_is_the_commands_json_at_the_banks_rate(
    bank: Lender, count_rows: Rows, cli: Cli
) -> None:
    ana = await bank.customer()
    answer = await bank.http.post(
        "/banking/loans/simulations",
        json={"principal": 10000.00, "term": 12, "system": "price"},
        headers=ana,
    )
    assert answer.status_code == 200, answer.text
    simulated = answer.json()
    assert simulated["start"] == utcnow().date().isoformat()
    assert simulated["monthly_rate"] == "1.990000"
    assert simulated["installments"][0]["payment"] == "945.02"  # 10000 · i / (1 - (1+i)^-12)
    command = cli.run(
        *("banking", "loans", "simulate", "--principal", "10000.00", "--rate", "1.99"),
        *("--period", "month", "--term", "12", "--system", "price"),
        *("--start", simulated["start"], "--iof-auto", "--json"),
    )
    assert command.exit_code == 0, command.stderr
    assert simulated == json.loads(command.stdout)
    assert (await count_rows(entries), await count_rows(applications)) == (0, 0)


async def test_a_sac_simulation_amortizes_evenly_and_needs_a_customer(bank: Lender) -> None:
    body = {"principal": 1200, "term": 3, "system": "sac"}
    anonymous = await bank.http.post("/banking/loans/simulations", json=body)
    problem(anonymous, 401, "unauthorized")
    ana = await bank.customer()
    simulated = (await bank.http.post("/banking/loans/simulations", json=body, headers=ana)).json()
    assert [i["amortization"] for i in simulated["installments"]] == ["400.00"] * 3
    assert [i["interest"] for i in simulated["installments"]] == ["23.88", "15.92", "7.96"]


# --- applications --------------------------------------------------------------------------


async def test_an_application_is_accepted_submitted_with_its_event(
    bank: Lender, count_rows: Rows
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana)
    answer = await bank.apply(ana, checking, principal=1500.50, term=24, system="sac")
    assert answer.status_code == 202, answer.text
    accepted = data(answer)
    assert accepted["status"] == "submitted"
    assert (accepted["principal"], accepted["monthly_income"]) == (D("1500.50"), D("5000.00"))
    assert (accepted["term"], accepted["system"], accepted["account_id"]) == (24, "sac", checking)
    assert accepted["monthly_rate"] == "1.990000"
    assert (accepted["loan_id"], accepted["decided_at"], accepted["reason"]) == (None, None, None)
    read = await bank.http.get(f"/banking/loans/applications/{accepted['id']}", headers=ana)
    assert data(read) == accepted
    [event] = await bank.events(messages.APPLICATIONS)
    assert event == {
        "v": 1,
        "id": accepted["id"],
        "customer_id": event["customer_id"],
        "account_id": checking,
        "principal": 150050,
        "term": 24,
        "system": "sac",
        "monthly_rate": "0.0199",
        "monthly_income": 500000,
    }
    assert await count_rows(entries) == 0  # no money moves before the decision


async def test_the_same_id_is_the_same_application_other_terms_a_409(
    bank: Lender, count_rows: Rows
) -> None:
    ana, bia = await bank.customer(), await bank.customer("Bia Souza")
    checking = await bank.account(ana)
    chosen = uuid7()
    first = await bank.apply(ana, checking, id=chosen)
    again = await bank.apply(ana, checking, id=chosen)
    assert (first.status_code, again.status_code) == (202, 202)
    assert data(again) == data(first)
    problem(await bank.apply(ana, checking, id=chosen, term=13), 409, "loan-application-id-reused")
    bias = await bank.account(bia)
    problem(await bank.apply(bia, bias, id=chosen), 409, "loan-application-id-reused")
    assert await count_rows(applications) == 1
    assert len(await bank.events(messages.APPLICATIONS)) == 1


BAD_BODIES = [
    ("principal", {"principal": 0}, "above zero"),
    ("principal", {"principal": -100}, "above zero"),
    ("principal", {"principal": 10.001}, "at most 2 decimal places"),
    ("principal", {"principal": 100.10000000000001}, "at most 2 decimal places"),  # a float sum
    ("principal", {"principal": "1000.00"}, "JSON number"),
    ("principal", {"principal": 1e16}, "at most"),
    ("term", {"term": 0}, ">= 1"),
    ("term", {"term": 10_000}, "<= 420"),
    ("term", {"term": 12.0}, "Expected `int`"),
    ("term", {"term": "12"}, "Expected `int`"),
    ("system", {"system": "german"}, "Invalid enum value"),
    ("system", {"system": None}, "Expected `str`"),
    ("monthly_rate", {"monthly_rate": -0.01}, "Unknown field"),  # the rate is the bank's
]
APPLICATION_ONLY = [
    ("monthly_income", {"monthly_income": -1}, "above zero"),
    ("monthly_income", {"monthly_income": 0}, "above zero"),
    ("monthly_income", {"monthly_income": 4000.123}, "at most 2 decimal places"),
    ("account_id", {"account_id": "nope"}, "match"),
    ("id", {"id": "not-a-uuid"}, "match"),
]


@pytest.mark.parametrize(("field", "change", "said"), BAD_BODIES)
async def test_a_bad_simulation_is_a_422_naming_the_field(
    bank: Lender, field: str, change: dict[str, Any], said: str
) -> None:
    ana = await bank.customer()
    body = {"principal": 1000, "term": 12, "system": "price", **change}
    answer = await bank.http.post("/banking/loans/simulations", json=body, headers=ana)
    found = problem(answer, 422, "validation-error")
    assert found["errors"][0]["loc"][-1] == field
    assert said in found["detail"], found["detail"]


@pytest.mark.parametrize(("field", "change", "said"), BAD_BODIES + APPLICATION_ONLY)
async def test_a_bad_application_is_a_422_naming_the_field_and_writes_nothing(
    bank: Lender, count_rows: Rows, field: str, change: dict[str, Any], said: str
) -> None:
    ana = await bank.customer()
    terms = dict(change)
    account = terms.pop("account_id", await bank.account(ana))
    found = problem(await bank.apply(ana, account, **terms), 422, "validation-error")
    assert found["errors"][0]["loc"][-1] == field
    assert said in found["detail"], found["detail"]
    assert await count_rows(applications) == 0
    assert await bank.outbox(messages.APPLICATIONS) == []


async def test_an_application_without_income_or_into_anothers_account_is_refused(
    bank: Lender, count_rows: Rows
) -> None:
    ana, bia = await bank.customer(), await bank.customer("Bia Souza")
    checking, bias = await bank.account(ana), await bank.account(bia)
    body = {"account_id": checking, "principal": 1000, "term": 12, "system": "price"}
    missing = await bank.http.post("/banking/loans/applications", json=body, headers=ana)
    assert problem(missing, 422, "validation-error")["errors"][0]["type"] == "missing"
    problem(await bank.apply(ana, bias), 404, "not-found")  # Bia's account: as if unknown
    problem(await bank.apply(ana, uuid7()), 404, "not-found")
    problem(await bank.apply({}, checking), 401, "unauthorized")
    assert await count_rows(applications) == 0
    chosen = await bank.applied(ana, checking)
    peek = await bank.http.get(f"/banking/loans/applications/{chosen}", headers=bia)
    problem(peek, 404, "not-found")


# --- the decision --------------------------------------------------------------------------


async def test_the_worker_disburses_an_application_with_its_plan(
    bank: Lender, engine: AsyncEngine
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana)
    chosen = await bank.applied(ana, checking, principal=1000, term=3)
    await bank.decide()
    decided = data(await bank.http.get(f"/banking/loans/applications/{chosen}", headers=ana))
    assert (decided["status"], decided["loan_id"], decided["reason"]) == ("disbursed", chosen, None)
    statement = data(await bank.http.get(f"/banking/loans/{chosen}", headers=ana))
    today = utcnow().date()
    assert statuses(statement) == ["due"] * 3
    assert [i["payment"] for i in statement["installments"]] == [D("346.69")] * 2 + [D("346.68")]
    assert statement["installments"][0]["due_date"] == add_months(today, 1).isoformat()
    assert (statement["status"], statement["outstanding"], statement["paid"]) == ("active", 1000, 0)
    iof = statement["iof"]
    assert D("3.80") < iof < D("10.00")  # 0.38 % and 0.0082 % a day
    assert statement["received"] == 1000 - iof
    assert await bank.posted(checking) == int((1000 - iof) * 100)  # the IOF kept out
    assert await bank.posted(bank.bank["bank:iof"]) == int(iof * 100)
    assert await bank.posted(bank.bank["bank:loans"]) == -100_000  # what the bank is owed
    [listed] = data(await bank.http.get("/banking/loans", headers=ana))
    assert listed["next_installment"] == {
        "number": 1,
        "due_date": statement["installments"][0]["due_date"],
        "payment": D("346.69"),
    }
    assert {k: v for k, v in statement.items() if k not in ("installments", "paid")} == listed
    [decision] = await bank.events(messages.DECIDED)
    assert (decision["decision"], decision["reason"]) == ("approved", None)
    [paid_out] = await bank.events(messages.DISBURSED)
    assert (paid_out["principal"], paid_out["received"]) == (100_000, 100_000 - int(iof * 100))
    await bank.ledger_whole()


REJECTIONS = [
    ({"principal": 10000, "monthly_income": 3000}, "installment-above-income-share", "945.02"),
    ({"principal": 99.99}, "principal-out-of-bounds", "lends 100.00 to 50000.00"),
    ({"principal": 50000.01}, "principal-out-of-bounds", "not 50000.01"),
    ({"term": 61}, "term-out-of-bounds", "1 to 60 months, not 61"),
]


@pytest.mark.parametrize(("terms", "reason", "said"), REJECTIONS)
async def test_the_rule_rejects_an_application_with_the_reason(
    bank: Lender, count_rows: Rows, terms: dict[str, Any], reason: str, said: str
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana)
    chosen = await bank.applied(ana, checking, **terms)
    await bank.decide()
    decided = data(await bank.http.get(f"/banking/loans/applications/{chosen}", headers=ana))
    assert (decided["status"], decided["reason"], decided["loan_id"]) == ("rejected", reason, None)
    assert said in decided["detail"], decided["detail"]
    [decision] = await bank.events(messages.DECIDED)
    assert (decision["decision"], decision["reason"]) == ("rejected", reason)
    assert await count_rows(entries) == 0  # no money moved
    assert data(await bank.http.get("/banking/loans", headers=ana)) == []


async def test_the_income_rule_holds_to_the_centavo(bank: Lender) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana)
    # 1,000.00 in 3 Price instalments: the largest is 346.69; 30 % of 1,155.64 is 346.692,
    # of 1,155.63 it is 346.689
    enough = await bank.applied(ana, checking, principal=1000, term=3, monthly_income=1155.64)
    short = await bank.applied(ana, checking, principal=1000, term=3, monthly_income=1155.63)
    await bank.decide()
    for chosen, status in ((enough, "disbursed"), (short, "rejected")):
        answer = await bank.http.get(f"/banking/loans/applications/{chosen}", headers=ana)
        assert data(answer)["status"] == status


async def test_a_blocked_or_closed_account_and_too_many_open_loans_are_rejected(
    engine: AsyncEngine,
) -> None:
    async with wired(engine, replace(POLICY, max_open=1)) as bank:
        ana = await bank.customer()
        checking, blocked, closed = [await bank.account(ana) for _ in range(3)]
        first = await bank.applied(ana, checking)
        second = await bank.applied(ana, checking)
        on_blocked = await bank.applied(ana, blocked)
        on_closed = await bank.applied(ana, closed)
        async with bank.db.transaction() as tx:
            await ledger.set_status(tx, blocked, Status.BLOCKED, utcnow())
        async with bank.db.transaction() as tx:
            await ledger.set_status(tx, closed, Status.CLOSED, utcnow())
        await bank.decide()
        found = {}
        for chosen in (first, second, on_blocked, on_closed):
            answer = await bank.http.get(f"/banking/loans/applications/{chosen}", headers=ana)
            found[chosen] = (data(answer)["status"], data(answer)["reason"])
        assert found == {
            first: ("disbursed", None),
            second: ("rejected", "too-many-open-loans"),
            on_blocked: ("rejected", "account-blocked"),
            on_closed: ("rejected", "account-closed"),
        }


async def test_a_redelivered_or_repeated_application_is_disbursed_once(
    bank: Lender, engine: AsyncEngine, count_rows: Rows
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana)
    chosen = await bank.applied(ana, checking)
    await bank.decide()
    bank.decided.clear()
    await bank.decide()  # the same message again: the inbox knows it
    [(_, key, body)] = await bank.outbox(messages.APPLICATIONS)
    forged = Delivery(messages.APPLICATIONS, body, "another-message-id", key, {})
    await _handle(bank, [forged])  # a new message for the decided application: left as it is
    async with engine.connect() as conn:
        disbursements = await conn.scalar(
            select(func.count()).select_from(entries).where(entries.c.id == f"loan-{chosen}")
        )
    assert disbursements == 1
    assert len(await bank.events(messages.DISBURSED)) == 1
    assert len(await bank.events(messages.DECIDED)) == 1
    assert await count_rows(loans) == 1
    assert await count_rows(dead_letters) == 0  # the repeat was taken in stride


async def test_a_message_that_is_no_application_is_a_dead_letter(
    bank: Lender, engine: AsyncEngine, count_rows: Rows
) -> None:
    unknown = messages.encode_application(
        application_id=uuid7(),
        customer_id=uuid7(),
        account_id=uuid7(),
        principal=100,
        term=1,
        system="price",
        monthly_rate=D("0.01"),
        monthly_income=100,
    )
    bodies = [b'{"v":1,"id":', b'{"v":1,"id":"x","principal":"1"}', unknown]
    await _handle(bank, [Delivery(messages.APPLICATIONS, b, uuid7(), None, {}) for b in bodies])
    async with engine.connect() as conn:
        errors = [row.error for row in await conn.execute(select(dead_letters))]
    assert len(errors) == 3
    assert "not a loan application message" in errors[0]
    assert errors[2].endswith("is unknown")
    assert await count_rows(entries) == 0


async def _handle(bank: Lender, deliveries: list[Delivery]) -> None:
    """The banking worker's consumer takes these deliveries."""
    subscription, handler = consumers.applications(
        policy=bank.policy, bank=bank_accounts(bank.bank)
    )
    consumer = Consumer(subscription=subscription, handler=handler, db=bank.db, bus=MemoryBus())
    await consumer.handle_batch(deliveries)
