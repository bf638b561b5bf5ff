"""Loans through banking's API and its worker on PostgreSQL and NATS JetStream, as the processes
build them: two applications accepted (202, submitted), the worker decides them through the
broker, one disbursed with its plan and one rejected by the income rule; an instalment paid on
request, the next by the scheduled collection on its due date (its clock moved there), the
rest paid off early; every centavo where it belongs, each event on the broker once, and the
ledger verified. Payments on request racing the scheduled collection pay each instalment once."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from banking_kit import (
    Customer,
    banking_on,
    deposit,
    eventually,
    open_account,
    serving,
    sign_up,
    tapped,
)
from loans_kit import wired
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.ledger import store as ledger_store
from paycore.banking.ledger.domain import Limit
from paycore.banking.ledger.service import bank_account_id
from paycore.banking.ledger.verify import verify
from paycore.banking.loans import messages
from paycore.banking.loans.collector import Collector
from paycore.banking.loans.schedule import add_months
from paycore.banking.loans.service import LOAN_BANK_ACCOUNTS, bank_accounts
from paycore.platform.clock import utcnow
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings

BANK = bank_accounts({a.name: bank_account_id(a.name) for a in LOAN_BANK_ACCOUNTS})
"""The loans' bank accounts: their ids derive from their names."""


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str, broker_url: str) -> Settings:
    return banking_on(
        tmp_path, postgres_url, broker_url, consumer_backoff_ms=10, consumer_backoff_max_ms=50
    )


@pytest.mark.parametrize("broker_url", ["nats", "rabbitmq"], indirect=True)
async def test_a_loan_is_decided_disbursed_and_repaid_through_the_worker(
    settings: Settings, broker_url: str
) -> None:
    engine = create_engine(settings.effective_database_url)
    try:
        async with (
            tapped(broker_url, messages.TOPICS[1:]) as tap,
            serving(settings) as http,
        ):
            ana = await sign_up(http, "Ana Lima", 41)
            account = await open_account(http, ana)
            await deposit(http, ana, account, 100)

            async def apply(**terms: Any) -> str:
                body = {"account_id": account, "system": "price", **terms}
                answer = await http.post("/banking/loans/applications", json=body, headers=ana.auth)
                assert answer.status_code == 202, answer.text
                assert answer.json()["status"] == "submitted"
                application_id: str = answer.json()["id"]
                return application_id

            lent = await apply(principal=1000.00, term=3, monthly_income=5000)
            refused = await apply(principal=10000.00, term=12, monthly_income=3000)
            decided = await eventually(lambda: decisions(http, ana, [lent, refused]))
            assert decided[lent]["status"] == "disbursed"
            assert (decided[refused]["status"], decided[refused]["reason"]) == (
                "rejected",
                "installment-above-income-share",
            )

            loan = await statement(http, ana, lent)
            iof = int(loan["iof"] * 100)
            assert [i["status"] for i in loan["installments"]] == ["due"] * 3
            assert await posted(http, ana, account) == 100_00 + 1000_00 - iof

            paid = await http.post(f"/banking/loans/{lent}/payments", headers=ana.auth)
            assert paid.status_code == 201, paid.text
            second_due = add_months(utcnow().date(), 2)
            noon = datetime.combine(second_due, time(12), tzinfo=UTC)
            collector = Collector(Database(engine), BANK, poll_seconds=1, clock=lambda: noon)
            collected = await collector.once(noon)
            assert (collected.paid, collected.short) == (1, 0)
            payoff = await http.post(f"/banking/loans/{lent}/payoff", headers=ana.auth)
            assert payoff.status_code == 201, payoff.text
            closed = payoff.json()
            assert [(i["status"], i["paid_by"]) for i in closed["installments"]] == [
                ("paid", "request"),
                ("paid", "schedule"),
                ("prepaid", "payoff"),
            ]
            assert (closed["status"], closed["outstanding"]) == ("paid-off", 0)
            # two instalments of 346.69, then the third's principal alone: 339.92
            assert await posted(http, ana, account) == 100_00 + 1000_00 - iof - 2 * 346_69 - 339_92

            wanted = {
                messages.DECIDED: 2,
                messages.DISBURSED: 1,
                messages.INSTALLMENT_PAID: 2,
                messages.CLOSED: 1,
            }

            async def all_seen() -> bool:
                return all(len(tap.events(t)) >= n for t, n in wanted.items())

            await eventually(all_seen)
        assert {t: len(tap.events(t)) for t in wanted} == wanted
        assert {e["id"]: e["decision"] for e in tap.events(messages.DECIDED)} == {
            lent: "approved",
            refused: "rejected",
        }
        assert [e["by"] for e in tap.events(messages.INSTALLMENT_PAID)] == ["request", "schedule"]
        balances = await bank_balances(engine)
        assert balances == {"loans": 0, "loan-interest": 19_90 + 13_40, "iof": iof}
        async with engine.connect() as conn:
            report = await verify(conn)
        assert report.ok, report.problem
    finally:
        await engine.dispose()


async def decisions(http: Any, who: Customer, ids: list[str]) -> dict[str, Any] | None:
    """Each application, once none is submitted any more."""
    found = {}
    for application_id in ids:
        answer = await http.get(f"/banking/loans/applications/{application_id}", headers=who.auth)
        assert answer.status_code == 200, answer.text
        found[application_id] = answer.json()
    return None if any(a["status"] == "submitted" for a in found.values()) else found


async def statement(http: Any, who: Customer, loan_id: str) -> dict[str, Any]:
    answer = await http.get(f"/banking/loans/{loan_id}", headers=who.auth)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = json.loads(answer.content, parse_float=Decimal)
    return found


async def posted(http: Any, who: Customer, account_id: str) -> int:
    answer = await http.get(f"/banking/accounts/{account_id}/balance", headers=who.auth)
    return int(json.loads(answer.content, parse_float=Decimal)["posted"] * 100)


async def bank_balances(engine: AsyncEngine) -> dict[str, int]:
    """The posted balance (credits less debits) of each of the loans' bank accounts."""
    found = {}
    async with engine.connect() as conn:
        for name in ("loans", "loan-interest", "iof"):
            row = await ledger_store.find_account(conn, bank_account_id(f"bank:{name}"))
            assert row is not None
            found[name] = ledger_store.balance_of(row).posted(Limit(row.balance_limit))
    return found


async def test_payments_racing_the_collection_pay_each_instalment_once(engine: AsyncEngine) -> None:
    """On PostgreSQL, six payment requests and three runs of the collection (at the last due
    date) at once on a loan of three instalments: each instalment is paid once, by one of
    them; the others find it paid or the loan closed."""
    async with wired(engine) as bank:
        ana = await bank.customer()
        checking = await bank.account(ana, deposit=100_00)
        chosen = await bank.applied(ana, checking, principal=1000, term=3)
        await bank.decide()
        held = await bank.posted(checking)
        last_due = datetime.combine(add_months(utcnow().date(), 3), time(12), tzinfo=UTC)
        paying = [
            bank.http.post(f"/banking/loans/{chosen}/payments", headers=ana) for _ in range(6)
        ]
        results = await asyncio.gather(*paying, *(bank.collect(last_due) for _ in range(3)))
        answers = [r for r in results if isinstance(r, httpx.Response)]
        by_request = sum(a.status_code == 201 for a in answers)
        assert {a.status_code for a in answers} <= {201, 409}
        by_schedule = sum(r.paid for r in results if not isinstance(r, httpx.Response))
        assert by_request + by_schedule == 3
        loan = json.loads((await bank.http.get(f"/banking/loans/{chosen}", headers=ana)).content)
        assert [i["status"] for i in loan["installments"]] == ["paid"] * 3
        assert loan["status"] == "paid"
        assert await bank.posted(checking) == held - (346_69 + 346_69 + 346_68)
        assert await bank.posted(bank.bank["bank:loans"]) == 0
        assert await bank.posted(bank.bank["bank:loan-interest"]) == 19_90 + 13_40 + 6_76
        await bank.ledger_whole()
