"""The loans' tables and queries.

``banking_loan_applications``: one row per application, as the customer asked for it (with the
bank's rate at that moment), and the decision once the banking worker has taken it: its status
and, if rejected, the reason.

``banking_loans``: one row per loan paid out (its id is its application's), with what changes
as it is repaid: its status, the principal outstanding and the next instalment to pay.

``banking_loan_installments``: the loan's plan, one row per instalment, each with its status
and, once paid, what was paid, when and by what. The money itself moves in the ledger's
journal, under transfer ids derived from the loan's id (``domain``); every change of these
rows commits with its ledger transfers, under the ledger's lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking.loans.domain import UNPAID, LoanStatus
from paycore.banking.loans.schedule import Installment
from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction

applications = Table(
    "banking_loan_applications",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("principal", BigInteger, nullable=False),
    Column("term", Integer, nullable=False),
    Column("system", String(8), nullable=False),
    Column("monthly_rate", String(40), nullable=False),  # a Decimal fraction, exact
    Column("monthly_income", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(48)),  # why it was rejected
    Column("detail", String(300)),
    Column("submitted_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime()),
    Index("ix_banking_loan_applications_customer", "customer_id", "submitted_at"),
)

loans = Table(
    "banking_loans",
    metadata,
    Column("id", String(36), ForeignKey("banking_loan_applications.id"), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("system", String(8), nullable=False),
    Column("principal", BigInteger, nullable=False),
    Column("term", Integer, nullable=False),
    Column("monthly_rate", String(40), nullable=False),
    Column("iof", BigInteger, nullable=False),
    Column("start", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outstanding", BigInteger, nullable=False),  # principal not repaid yet
    Column("next_installment", Integer, nullable=False),  # the lowest unpaid; term + 1: none
    Column("disbursed_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime()),
    Index("ix_banking_loans_customer", "customer_id", "disbursed_at"),
    Index("ix_banking_loans_status", "status", "id"),
)

installments = Table(
    "banking_loan_installments",
    metadata,
    Column("loan_id", String(36), ForeignKey("banking_loans.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("payment", BigInteger, nullable=False),
    Column("interest", BigInteger, nullable=False),
    Column("amortization", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),
    Column("paid_principal", BigInteger),
    Column("paid_interest", BigInteger),
    Column("paid_at", UtcDateTime()),
    Column("paid_by", String(8)),
    Column("failure", String(48)),  # why the last collection failed (overdue)
    PrimaryKeyConstraint("loan_id", "number"),
)
INSTALLMENT_COLUMNS = tuple(c.name for c in installments.c)


# --- applications --------------------------------------------------------------------------


async def insert_application(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(applications.insert().values(**row))


async def find_application(conn: AsyncConnection, application_id: str) -> AnyRow | None:
    query = select(applications).where(applications.c.id == application_id)
    return (await conn.execute(query)).first()


async def decide_application(
    tx: Transaction,
    application_id: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    detail: str | None = None,
) -> None:
    await tx.execute(
        update(applications)
        .where(applications.c.id == application_id)
        .values(status=status, reason=reason, detail=detail, decided_at=now)
    )


# --- loans ---------------------------------------------------------------------------------


async def insert_loan(
    tx: Transaction, row: dict[str, Any], plan: Sequence[Installment], status: str
) -> None:
    """A loan and its plan, every instalment ``status``."""
    await tx.execute(loans.insert().values(**row))
    records = [
        (
            row["id"],
            i.number,
            i.due_date,
            i.payment,
            i.interest,
            i.amortization,
            i.balance,
            status,
            None,
            None,
            None,
            None,
            None,
        )
        for i in plan
    ]
    await tx.insert(installments, INSTALLMENT_COLUMNS, records)


async def find_loan(conn: AsyncConnection, loan_id: str) -> AnyRow | None:
    return (await conn.execute(select(loans).where(loans.c.id == loan_id))).first()


async def loans_of(conn: AsyncConnection, customer_id: str) -> Sequence[AnyRow]:
    """The customer's loans, the oldest first, each with its next unpaid instalment's due
    date and payment (none once repaid)."""
    query = (
        select(
            loans,
            installments.c.due_date.label("next_due_date"),
            installments.c.payment.label("next_payment"),
        )
        .outerjoin(
            installments,
            and_(
                installments.c.loan_id == loans.c.id,
                installments.c.number == loans.c.next_installment,
            ),
        )
        .where(loans.c.customer_id == customer_id)
        .order_by(loans.c.disbursed_at, loans.c.id)
    )
    return (await conn.execute(query)).all()


async def open_loans(conn: AsyncConnection, customer_id: str) -> int:
    query = (
        select(func.count())
        .select_from(loans)
        .where(loans.c.customer_id == customer_id, loans.c.status == LoanStatus.ACTIVE.value)
    )
    return int((await conn.execute(query)).scalar_one())


async def update_loan(tx: Transaction, loan_id: str, **values: Any) -> None:
    await tx.execute(update(loans).where(loans.c.id == loan_id).values(**values))


async def installments_of(conn: AsyncConnection, loan_id: str) -> Sequence[AnyRow]:
    query = (
        select(installments)
        .where(installments.c.loan_id == loan_id)
        .order_by(installments.c.number)
    )
    return (await conn.execute(query)).all()


async def unpaid_installments(conn: AsyncConnection, loan_id: str) -> Sequence[AnyRow]:
    query = (
        select(installments)
        .where(
            installments.c.loan_id == loan_id,
            installments.c.status.in_([s.value for s in UNPAID]),
        )
        .order_by(installments.c.number)
    )
    return (await conn.execute(query)).all()


async def update_installment(tx: Transaction, loan_id: str, number: int, **values: Any) -> None:
    await tx.execute(
        update(installments)
        .where(installments.c.loan_id == loan_id, installments.c.number == number)
        .values(**values)
    )


async def due_now(
    conn: AsyncConnection, today: date, after: str | None, limit: int
) -> Sequence[AnyRow]:
    """Active loans whose next instalment is due by ``today``, by loan id after ``after``:
    each loan with that instalment's row (``number``, ``due_date``, ``payment`` …)."""
    query = (
        select(
            loans.c.id,
            loans.c.customer_id,
            loans.c.account_id,
            loans.c.term,
            loans.c.outstanding,
            *(installments.c[name] for name in INSTALLMENT_COLUMNS if name != "loan_id"),
        )
        .join(
            installments,
            and_(
                installments.c.loan_id == loans.c.id,
                installments.c.number == loans.c.next_installment,
            ),
        )
        .where(loans.c.status == LoanStatus.ACTIVE.value, installments.c.due_date <= today)
        .order_by(loans.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(loans.c.id > after)
    return (await conn.execute(query)).all()


def installment_of(row: Any) -> Installment:
    """An instalment row as the plan's ``Installment``."""
    return Installment(
        row.number, row.due_date, row.payment, row.interest, row.amortization, row.balance
    )


def rate_of(row: Any) -> Decimal:
    return Decimal(row.monthly_rate)
