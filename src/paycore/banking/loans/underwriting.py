"""The banking worker's decision on loan applications: each one still ``submitted`` is
rejected with the reason (``domain.decide``) or approved and paid out, its plan stored, in the
consumer's unit of work and under the ledger's lock. An application decided before (a message
redelivered, a worker killed after its commit) is left as it is; its disbursement's transfer
ids derive from its id, so the ledger would never pay it out twice anyway.

The plan starts on the day of the decision (UTC), the first instalment due a month later; the
IOF (a natural person's) is kept out of what the account receives, as the simulation shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from paycore.banking.ledger.domain import Status
from paycore.banking.ledger.service import LEDGER_LOCK
from paycore.banking.ledger.store import find_account
from paycore.banking.loans import messages, store
from paycore.banking.loans.domain import (
    ApplicationStatus,
    Applied,
    BankAccounts,
    InstallmentStatus,
    LoanStatus,
    Policy,
    Rejection,
    decide,
    disbursement,
)
from paycore.banking.loans.repayment import apply_chain
from paycore.banking.loans.schedule import InvalidLoan, Period, System, simulate
from paycore.banking.loans.simulation import Simulation, costed
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Transaction


async def decide_applications(
    tx: Transaction,
    application_ids: Sequence[str],
    *,
    policy: Policy,
    bank: BankAccounts,
    now: datetime,
) -> list[str | None]:
    """Decide each application, in order: per id, None, or why its message is refused (an
    application nobody submitted)."""
    await tx.serialize(LEDGER_LOCK)
    verdicts: list[str | None] = []
    for application_id in application_ids:
        row = await store.find_application(tx.conn, application_id)
        if row is None:
            verdicts.append(f"loan application {application_id} is unknown")
            continue
        verdicts.append(None)
        if row.status == ApplicationStatus.SUBMITTED.value:
            await _decide(tx, row, policy, bank, now)
    return verdicts


async def _decide(
    tx: Transaction, row: AnyRow, policy: Policy, bank: BankAccounts, now: datetime
) -> None:
    try:
        simulation = _simulation(row, now)
    except InvalidLoan as exc:
        await _reject(tx, row, Rejection.INVALID_LOAN.value, exc.detail, now)
        return
    account = await find_account(tx.conn, row.account_id)
    status = None
    if account is not None and account.customer_id == row.customer_id:
        status = Status(account.status)
    applied = Applied(
        principal=row.principal,
        term=row.term,
        monthly_income=row.monthly_income,
        account_status=status,
        open_loans=await store.open_loans(tx.conn, row.customer_id),
        plan=simulation.plan,
    )
    decision = decide(policy, applied)
    if decision.rejection is not None:
        await _reject(tx, row, decision.rejection.value, decision.detail, now)
        return
    transfers = disbursement(row.id, row.account_id, bank, row.principal, simulation.iof)
    refused = await apply_chain(tx, transfers, now)
    if refused is not None:  # the ledger's reason, though the rule checked the account
        await _reject(tx, row, refused.code, refused.detail, now)
        return
    await _disburse(tx, row, simulation, now)


def _simulation(row: AnyRow, now: datetime) -> Simulation:
    plan = simulate(
        row.principal,
        Decimal(row.monthly_rate),
        period=Period.MONTH,
        term=row.term,
        system=System(row.system),
        start=now.date(),
    )
    return costed(plan)


async def _reject(tx: Transaction, row: AnyRow, reason: str, detail: str, now: datetime) -> None:
    """Rejected with the rule's reason (a ``Rejection``) or the ledger's."""
    detail = detail[:300]
    await store.decide_application(
        tx, row.id, ApplicationStatus.REJECTED.value, now, reason=reason, detail=detail
    )
    _decided(tx, row, reason, detail, now)


async def _disburse(tx: Transaction, row: AnyRow, simulation: Simulation, now: datetime) -> None:
    plan = simulation.plan
    loan = {
        "id": row.id,
        "customer_id": row.customer_id,
        "account_id": row.account_id,
        "system": row.system,
        "principal": row.principal,
        "term": row.term,
        "monthly_rate": row.monthly_rate,
        "iof": simulation.iof,
        "start": plan.start,
        "status": LoanStatus.ACTIVE.value,
        "outstanding": row.principal,
        "next_installment": 1,
        "disbursed_at": now,
    }
    await store.insert_loan(tx, loan, plan.installments, InstallmentStatus.DUE.value)
    await store.decide_application(tx, row.id, ApplicationStatus.DISBURSED.value, now)
    _decided(tx, row, None, "", now)
    tx.publish(
        messages.DISBURSED,
        messages.encode_disbursed(
            loan_id=row.id,
            customer_id=row.customer_id,
            account_id=row.account_id,
            principal=row.principal,
            iof=simulation.iof,
            term=row.term,
            system=row.system,
            monthly_rate=Decimal(row.monthly_rate),
            first_due=plan.installments[0].due_date,
            last_due=plan.installments[-1].due_date,
            at=now,
        ),
        key=row.id,
        message_id=f"loan-{row.id}-disbursed",
    )


def _decided(tx: Transaction, row: AnyRow, reason: str | None, detail: str, now: datetime) -> None:
    tx.publish(
        messages.DECIDED,
        messages.encode_decided(row.id, row.customer_id, reason, detail, now),
        key=row.id,
        message_id=f"loan-application-{row.id}-decided",
    )
