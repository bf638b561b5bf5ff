"""Repaying a loan, on request (``service``) and on schedule (``collector``): a linked chain of
ledger transfers applied in the caller's unit of work (``apply_chain``), an instalment recorded
as paid (``record_paid``) or, for the scheduled collection, as overdue (``collect``), a loan
closed (``close``). Each runs under the ledger's lock, taken by the caller before it read the
rows it changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from paycore.banking import service as banking
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.domain import Limit, Reason, Transfer, TransferRefused, units
from paycore.banking.ledger.store import balance_of, find_account
from paycore.banking.loans import messages, store
from paycore.banking.loans.domain import (
    BankAccounts,
    InstallmentStatus,
    LoanStatus,
    PaidBy,
    installment_payment,
)
from paycore.banking.loans.schedule import Installment
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Transaction


async def short_of_funds(
    tx: Transaction, refused: TransferRefused, account_id: str, owed: int, what: str
) -> TransferRefused:
    """The refusal to answer: for want of funds, what the account has against what is owed
    (the ledger's own detail names the transfer of the chain that failed, the interest's
    after the principal's, with what was left after the principal)."""
    if refused.reason is not Reason.INSUFFICIENT_FUNDS:
        return refused
    row = await find_account(tx.conn, account_id)
    assert row is not None
    available = balance_of(row).available(Limit(row.balance_limit))
    detail = (
        f"account {account_id} has {units(available)} BRL available; {what} takes {units(owed)}"
    )
    return TransferRefused(Reason.INSUFFICIENT_FUNDS, detail)


async def apply_chain(
    tx: Transaction, transfers: Sequence[Transfer], now: datetime
) -> TransferRefused | None:
    """Apply a linked chain in ``tx``: None once every transfer has its entry (new, or a
    replay), else why the chain was refused (the refused transfer's own reason, not
    ``linked-event-failed``)."""
    applied = await ledger.apply(tx, transfers, now)
    banking.counted(tx, applied.outcomes)
    refused = [o for o in applied.outcomes if o.entry is None]
    if not refused:
        return None
    first = next((o for o in refused if o.reason is not Reason.LINKED_EVENT_FAILED), refused[0])
    assert first.reason is not None
    return TransferRefused(first.reason, first.detail)


async def collect(
    tx: Transaction, due: AnyRow, bank: BankAccounts, now: datetime
) -> TransferRefused | None:
    """The scheduled collection of one instalment (a row of ``store.due_now``), in ``tx``
    under the ledger's lock: paid, or marked overdue with the reason (its event published the
    first time only; it is tried again on the next run)."""
    installment = store.installment_of(due)
    transfers = installment_payment(due.id, due.account_id, bank, installment)
    refused = await apply_chain(tx, transfers, now)
    if refused is None:
        await record_paid(tx, due, installment, PaidBy.SCHEDULE, now)
        return None
    if due.status != InstallmentStatus.OVERDUE.value:
        tx.publish(
            messages.INSTALLMENT_OVERDUE,
            messages.encode_installment(
                due.id,
                installment.number,
                principal=installment.amortization,
                interest=installment.interest,
                by=PaidBy.SCHEDULE.value,
                due_date=installment.due_date,
                at=now,
                reason=refused.code,
            ),
            key=due.id,
            message_id=f"loan-{due.id}-{installment.number}-overdue",
        )
    await store.update_installment(
        tx,
        due.id,
        installment.number,
        status=InstallmentStatus.OVERDUE.value,
        failure=refused.code,
    )
    return refused


async def record_paid(
    tx: Transaction, loan: AnyRow, installment: Installment, by: PaidBy, now: datetime
) -> None:
    """Instalment paid in full: its row, the loan's outstanding principal and next
    instalment, its event; the loan closed (``paid``) after its last instalment. ``loan`` is
    a row with the loan's ``id``, ``term`` and ``outstanding``."""
    await store.update_installment(
        tx,
        loan.id,
        installment.number,
        status=InstallmentStatus.PAID.value,
        paid_principal=installment.amortization,
        paid_interest=installment.interest,
        paid_at=now,
        paid_by=by.value,
        failure=None,
    )
    tx.publish(
        messages.INSTALLMENT_PAID,
        messages.encode_installment(
            loan.id,
            installment.number,
            principal=installment.amortization,
            interest=installment.interest,
            by=by.value,
            due_date=installment.due_date,
            at=now,
        ),
        key=loan.id,
        message_id=f"loan-{loan.id}-{installment.number}-paid",
    )
    outstanding = loan.outstanding - installment.amortization
    following = installment.number + 1
    await store.update_loan(tx, loan.id, outstanding=outstanding, next_installment=following)
    if following > loan.term:
        await close(tx, loan, LoanStatus.PAID, now)


async def close(tx: Transaction, loan: AnyRow, status: LoanStatus, now: datetime) -> None:
    await store.update_loan(
        tx,
        loan.id,
        status=status.value,
        outstanding=0,
        next_installment=loan.term + 1,
        closed_at=now,
    )
    tx.publish(
        messages.CLOSED,
        messages.encode_closed(loan.id, status.value, now),
        key=loan.id,
        message_id=f"loan-{loan.id}-closed",
    )
