"""What the loans' routes answer: an application with its decision, a loan in brief, and a
loan's statement (its plan, each instalment's status and what was paid, when and by what).
Money is exact JSON numbers, as on every banking route; rates are percent strings
(``"1.990000"`` is 1.99 % a month), as in a simulation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.banking.loans.domain import ApplicationStatus, InstallmentStatus, shown_status
from paycore.banking.loans.simulation import RATE_PLACES, percent
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.responses import Money


class ApplicationOut(TypedDict):
    id: str
    status: str  # submitted, rejected or disbursed
    account_id: str
    principal: Money
    term: int
    system: str
    monthly_rate: str  # the bank's, when it was made: a percent
    monthly_income: Money  # as declared
    reason: str | None  # why it was rejected: a stable code
    detail: str | None
    loan_id: str | None  # once disbursed: the loan (its id is the application's)
    submitted_at: str
    decided_at: str | None


class NextInstallment(TypedDict):
    number: int
    due_date: str
    payment: Money


class LoanOut(TypedDict):
    id: str
    account_id: str
    status: str  # active, paid or paid-off
    system: str
    principal: Money
    term: int
    monthly_rate: str
    iof: Money  # kept out of what the account received
    received: Money
    outstanding: Money  # principal not repaid yet
    next_installment: NextInstallment | None
    disbursed_at: str
    closed_at: str | None


class InstallmentOut(TypedDict):
    number: int
    due_date: str
    payment: Money
    interest: Money
    amortization: Money
    balance: Money  # what the plan leaves outstanding after it
    status: str  # due, overdue, paid or prepaid
    paid_principal: Money | None
    paid_interest: Money | None
    paid_at: str | None
    paid_by: str | None  # request, schedule or payoff
    failure: str | None  # why the last collection on its due date failed


class StatementOut(LoanOut):
    installments: list[InstallmentOut]
    paid: Money  # everything paid so far, principal and interest


def application_view(row: AnyRow) -> ApplicationOut:
    disbursed = row.status == ApplicationStatus.DISBURSED.value
    return {
        "id": row.id,
        "status": row.status,
        "account_id": row.account_id,
        "principal": from_cents(row.principal),
        "term": row.term,
        "system": row.system,
        "monthly_rate": _rate(row.monthly_rate),
        "monthly_income": from_cents(row.monthly_income),
        "reason": row.reason,
        "detail": row.detail,
        "loan_id": row.id if disbursed else None,
        "submitted_at": iso(row.submitted_at),
        "decided_at": iso(row.decided_at) if row.decided_at else None,
    }


def loan_view(row: AnyRow, following: NextInstallment | None) -> LoanOut:
    return {
        "id": row.id,
        "account_id": row.account_id,
        "status": row.status,
        "system": row.system,
        "principal": from_cents(row.principal),
        "term": row.term,
        "monthly_rate": _rate(row.monthly_rate),
        "iof": from_cents(row.iof),
        "received": from_cents(row.principal - row.iof),
        "outstanding": from_cents(row.outstanding),
        "next_installment": following,
        "disbursed_at": iso(row.disbursed_at),
        "closed_at": iso(row.closed_at) if row.closed_at else None,
    }


def listed_view(row: AnyRow) -> LoanOut:
    """A loan of ``store.loans_of`` (with its next instalment's due date and payment)."""
    following: NextInstallment | None = None
    if row.next_due_date is not None:
        following = {
            "number": row.next_installment,
            "due_date": row.next_due_date.isoformat(),
            "payment": from_cents(row.next_payment),
        }
    return loan_view(row, following)


def statement_view(loan: AnyRow, rows: Sequence[AnyRow], today: date) -> StatementOut:
    plan = [installment_view(r, today) for r in rows]
    upcoming = [i for i in plan if i["number"] == loan.next_installment]
    following: NextInstallment | None = None
    if upcoming:
        following = {
            "number": upcoming[0]["number"],
            "due_date": upcoming[0]["due_date"],
            "payment": upcoming[0]["payment"],
        }
    paid = sum((r.paid_principal or 0) + (r.paid_interest or 0) for r in rows)
    return {**loan_view(loan, following), "installments": plan, "paid": from_cents(paid)}


def installment_view(row: AnyRow, today: date) -> InstallmentOut:
    status = shown_status(InstallmentStatus(row.status), row.due_date, today)
    return {
        "number": row.number,
        "due_date": row.due_date.isoformat(),
        "payment": from_cents(row.payment),
        "interest": from_cents(row.interest),
        "amortization": from_cents(row.amortization),
        "balance": from_cents(row.balance),
        "status": status.value,
        "paid_principal": _money(row.paid_principal),
        "paid_interest": _money(row.paid_interest),
        "paid_at": iso(row.paid_at) if row.paid_at else None,
        "paid_by": row.paid_by,
        "failure": row.failure,
    }


def _money(cents: int | None) -> Decimal | None:
    return None if cents is None else from_cents(cents)


def _rate(stored: str) -> str:
    return percent(Decimal(stored), RATE_PLACES)
