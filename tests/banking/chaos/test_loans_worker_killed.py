"""100 loan applications over HTTP from five customers while the banking worker is SIGKILLed
twice and restarted, deciding them in small batches: afterwards every application is decided
once, each customer has exactly as many loans as the rule allows (the open-loans limit counts
every loan paid out, whatever order the applications were decided in), no application whose
income is too low is lent, every loan was paid out exactly once (one disbursement in the
journal, its IOF beside it), each account holds exactly what its loans paid into it, the
bank's accounts mirror them, the stored balances are the journal's and `paycore banking
verify` passes; the broker holds one decision per application and nothing became a dead
letter."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from banking_kit import as_customer, deployed, open_account_sync, sign_up_sync
from procs import paycore_run
from sqlalchemy import func, select

from paycore.banking.ledger import store as ledger_store
from paycore.banking.ledger.service import bank_account_id
from paycore.banking.loans import messages
from paycore.banking.loans import store as loans_store
from paycore.platform.messaging.brokers.nats import stream_name
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine

CUSTOMERS = 5
PER_CUSTOMER = 20
POOR = 2  # of each customer's applications, declaring too little income to be lent
MAX_OPEN = 15  # so each customer is lent 15 of their 18 eligible applications
COUNT = CUSTOMERS * PER_CUSTOMER
pytestmark = pytest.mark.slow

Planned = tuple[int, int, int, str, int]  # customer, principal, term, system, income (cents)


def plan() -> dict[str, Planned]:
    """The applications, by id: 100.00 to 5,000.00 in 1 to 24 instalments; each customer's
    first ``POOR`` declare an income of 1.00."""
    rng = random.Random(20)
    planned = {}
    for customer in range(CUSTOMERS):
        for n in range(PER_CUSTOMER):
            income = 100 if n < POOR else 10_000_000
            principal = rng.randint(100_00, 5_000_00)
            terms = (rng.randint(1, 24), rng.choice(("price", "sac")), income)
            planned[str(uuid.uuid4())] = (customer, principal, *terms)
    return dict(sorted(planned.items()))  # the customers' applications interleaved


async def submit(
    base: str, secrets: list[str], accounts: list[str], planned: dict[str, Planned]
) -> None:
    """POST every application (8 at a time); each must be accepted."""
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one(application_id: str, who: int, principal: int, *rest: Any) -> None:
            term, system, income = rest
            body = (
                f'{{"id":"{application_id}","account_id":"{accounts[who]}",'
                f'"principal":{principal / 100:.2f},"term":{term},"system":"{system}",'
                f'"monthly_income":{income / 100:.2f}}}'
            )
            async with gate:
                answer = await http.post(
                    "/banking/loans/applications", content=body, headers=as_customer(secrets[who])
                )
            assert answer.status_code == 202, answer.text

        await asyncio.gather(*(one(i, *p) for i, p in planned.items()))


async def decided(url: str) -> dict[str, tuple[str, str | None]]:
    """Each decided application's status and reason."""
    a = loans_store.applications.c
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(a.id, a.status, a.reason).where(a.status != "submitted")
            return {row.id: (row.status, row.reason) for row in await conn.execute(query)}
    finally:
        await engine.dispose()


async def ledger_state(url: str) -> dict[str, Any]:
    """The journal's entries by id (accounts and amount), the stored balances, each account's
    posted credits less debits summed from the journal, the loans and their instalments, and
    the dead letters."""
    e = ledger_store.entries.c
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = {
                row.id: (row.debit_account_id, row.credit_account_id, row.amount)
                for row in await conn.execute(
                    select(e.id, e.debit_account_id, e.credit_account_id, e.amount)
                )
            }
            stored = {
                row.account_id: (row.debits_posted, row.credits_posted)
                for row in await conn.execute(select(ledger_store.balances))
            }
            summed: Counter[str] = Counter()
            for debit, credit, amount in found.values():
                summed[credit] += amount
                summed[debit] -= amount
            loans = {
                row.id: (row.account_id, row.principal, row.iof, row.term)
                for row in await conn.execute(select(loans_store.loans))
            }
            installments = await conn.scalar(
                select(func.count()).select_from(loans_store.installments)
            )
            letters = await conn.scalar(select(func.count()).select_from(dead_letters))
    finally:
        await engine.dispose()
    return {
        "entries": found,
        "stored": stored,
        "summed": dict(summed),
        "loans": loans,
        "installments": int(installments or 0),
        "letters": int(letters or 0),
    }


async def stream_sizes(url: str) -> dict[str, int]:
    client = await nats.connect(url)
    js = client.jetstream()
    topics = (messages.APPLICATIONS, messages.DECIDED, messages.DISBURSED)
    sizes = {topic: (await js.stream_info(stream_name(topic))).state.messages for topic in topics}
    await client.close()
    return sizes


async def test_killing_the_worker_disburses_every_loan_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    kills = 0
    # small batches: a kill is likely to land inside one
    settings = {"banking_loans_batch": 4, "banking_loans_max_open": MAX_OPEN}
    async with deployed(tmp_path, postgres_url, **settings) as bank:
        with httpx.Client(base_url=bank.base, timeout=30) as http:
            secrets = [sign_up_sync(http, 700 + n)[1] for n in range(CUSTOMERS)]
            accounts = [open_account_sync(http, secret) for secret in secrets]
        planned = plan()
        submitting = asyncio.create_task(submit(bank.base, secrets, accounts, planned))
        for share in (0.3, 0.65):
            while len(await decided(postgres_url)) < COUNT * share:
                assert not submitting.done() or submitting.exception() is None
                await asyncio.sleep(0.01)
            await asyncio.to_thread(bank.worker.kill)
            kills += 1
            await asyncio.to_thread(bank.worker.start)
        await submitting
        deadline = time.monotonic() + 60
        while len(await decided(postgres_url)) < COUNT:
            assert time.monotonic() < deadline, bank.worker.log_tail()
            await asyncio.sleep(0.1)
        await asyncio.sleep(4)  # redeliveries after ack_wait must change nothing
        outcome = await decided(postgres_url)
        sizes = await stream_sizes(bank.broker.url)
        with httpx.Client(base_url=bank.base, timeout=30) as http:
            answered = Counter(
                http.get(
                    f"/banking/loans/applications/{i}", headers=as_customer(secrets[p[0]])
                ).json()["status"]
                for i, p in planned.items()
            )
    verified, _ = await asyncio.to_thread(paycore_run, bank.env, "banking", "verify")
    state = await ledger_state(postgres_url)

    assert kills == 2
    # every application decided once, and says so; each customer lent exactly MAX_OPEN
    assert outcome.keys() == planned.keys()
    lent = {i for i, (status, _) in outcome.items() if status == "disbursed"}
    assert answered == {"disbursed": len(lent), "rejected": COUNT - len(lent)}
    per_customer = Counter(planned[i][0] for i in lent)
    assert per_customer == dict.fromkeys(range(CUSTOMERS), MAX_OPEN)
    assert not any(planned[i][4] == 100 for i in lent)  # no one too poor was lent
    reasons = Counter(reason for status, reason in outcome.values() if status == "rejected")
    assert set(reasons) <= {"too-many-open-loans", "installment-above-income-share"}
    # every loan paid out once: its disbursement and its IOF, nothing else in the journal
    assert state["loans"].keys() == lent
    entries = state["entries"]
    loan_entries = {i for i in entries if i.startswith("loan-")}
    assert loan_entries == {f"loan-{i}" for i in lent} | {f"loan-{i}-iof" for i in lent}
    loans_account = bank_account_id("bank:loans")
    iof_account = bank_account_id("bank:iof")
    expected: Counter[str] = Counter()
    for loan_id, (account, principal, iof, term) in state["loans"].items():
        who, planned_principal, planned_term = planned[loan_id][:3]
        assert (account, principal, term) == (accounts[who], planned_principal, planned_term)
        assert entries[f"loan-{loan_id}"] == (loans_account, account, principal - iof)
        assert entries[f"loan-{loan_id}-iof"] == (loans_account, iof_account, iof)
        expected[account] += principal - iof
        expected[iof_account] += iof
        expected[loans_account] -= principal
    assert state["installments"] == sum(loan[3] for loan in state["loans"].values())
    # the accounts hold exactly that; stored balances are the journal's; debits equal credits
    assert {a: state["summed"].get(a, 0) for a in expected} == dict(expected)
    posted = {a: credits - debits for a, (debits, credits) in state["stored"].items()}
    assert posted == {a: state["summed"].get(a, 0) for a in posted}
    assert sum(d for d, _ in state["stored"].values()) == sum(
        c for _, c in state["stored"].values()
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger intact" in verified.stderr
    # one message per application and per decision on the broker; no dead letter
    assert sizes == {
        messages.APPLICATIONS: COUNT,
        messages.DECIDED: COUNT,
        messages.DISBURSED: len(lent),
    }
    assert state["letters"] == 0
