"""The loans' use cases for their customers: apply (accepted with its
``banking.loan.applications`` event in one commit, decided by the banking worker:
``underwriting``), read an application, one's loans and a loan's statement, pay the next
instalment now, pay a loan off (through ``repayment``, which the scheduled collection
shares).

Every repayment runs in a unit of work under the ledger's lock (``LEDGER_LOCK``, which
``ledger.apply`` takes too, taken here first): the instalment's state is read, its transfers
applied and its row changed with no other writer in between, so a payment on request and the
scheduled run never both take one instalment (and if they did, the ledger would answer the
second with the first's entries: the transfer ids are the instalment's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from paycore.banking import service as banking
from paycore.banking.ledger.service import LEDGER_LOCK, BankAccount
from paycore.banking.loans import messages, store
from paycore.banking.loans.domain import (
    INTEREST_ACCOUNT_KIND,
    IOF_ACCOUNT_KIND,
    LOAN_ACCOUNT_KIND,
    ApplicationIdReused,
    ApplicationStatus,
    BankAccounts,
    InstallmentStatus,
    LoanClosed,
    LoanStatus,
    PaidBy,
    installment_payment,
    payoff,
    payoff_payment,
)
from paycore.banking.loans.repayment import (
    apply_chain,
    close,
    record_paid,
    short_of_funds,
)
from paycore.banking.loans.schedule import System
from paycore.platform.errors import NotFound
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database, Transaction

LOANS = BankAccount("bank:loans", LOAN_ACCOUNT_KIND)
"""Loans are paid out of it and their principal comes back to it: what it is owed."""
LOAN_INTEREST = BankAccount("bank:loan-interest", INTEREST_ACCOUNT_KIND)
"""Loans' interest is paid into it."""
IOF = BankAccount("bank:iof", IOF_ACCOUNT_KIND)
"""The IOF kept out of loans paid out: owed to the Receita."""
LOAN_BANK_ACCOUNTS = (LOANS, LOAN_INTEREST, IOF)


def bank_accounts(ids: dict[str, str]) -> BankAccounts:
    """The loans' bank accounts among the bank's own accounts' ids (by name)."""
    return BankAccounts(ids[LOANS.name], ids[LOAN_INTEREST.name], ids[IOF.name])


@dataclass(frozen=True, slots=True)
class Asked:
    """An application as the customer makes it (amounts in centavos)."""

    id: str
    account_id: str
    principal: int
    term: int
    system: System
    monthly_income: int


class Loans:
    """The customers' loan use cases on one database: the bank's accounts loans move money
    between, and its rate for new applications."""

    def __init__(self, db: Database, *, bank: BankAccounts, monthly_rate: Decimal) -> None:
        self.db = db
        self.bank = bank
        self.monthly_rate = monthly_rate

    # -- applications -------------------------------------------------------------------

    async def apply(self, customer_id: str, asked: Asked, now: datetime) -> AnyRow:
        """The application, written with its event in one commit (status ``submitted``); the
        same id with the same terms again is the same application (as it stands now), with
        other terms (or another customer's) ``ApplicationIdReused``."""
        await banking.own_account(self.db, customer_id, asked.account_id)
        earlier = await self._earlier(customer_id, asked)
        if earlier is not None:
            return earlier
        row = {
            "id": asked.id,
            "customer_id": customer_id,
            "account_id": asked.account_id,
            "principal": asked.principal,
            "term": asked.term,
            "system": asked.system.value,
            "monthly_rate": str(self.monthly_rate),
            "monthly_income": asked.monthly_income,
            "status": ApplicationStatus.SUBMITTED.value,
            "submitted_at": now,
        }
        try:
            async with self.db.transaction() as tx:
                await store.insert_application(tx, row)
                tx.publish(
                    messages.APPLICATIONS,
                    messages.encode_application(
                        application_id=asked.id,
                        customer_id=customer_id,
                        account_id=asked.account_id,
                        principal=asked.principal,
                        term=asked.term,
                        system=asked.system.value,
                        monthly_rate=self.monthly_rate,
                        monthly_income=asked.monthly_income,
                    ),
                    key=asked.id,
                    message_id=f"loan-application-{asked.id}",
                )
        except IntegrityError:  # the same id at the same moment
            earlier = await self._earlier(customer_id, asked)
            if earlier is None:
                raise
            return earlier
        return await self.application(customer_id, asked.id)

    async def _earlier(self, customer_id: str, asked: Asked) -> AnyRow | None:
        """The application stored under ``asked.id``, if it is this one."""
        async with self.db.connect() as conn:
            row = await store.find_application(conn, asked.id)
        if row is None:
            return None
        same = (
            row.customer_id,
            row.account_id,
            row.principal,
            row.term,
            row.system,
            row.monthly_income,
        ) == (
            customer_id,
            asked.account_id,
            asked.principal,
            asked.term,
            asked.system.value,
            asked.monthly_income,
        )
        if not same:
            raise ApplicationIdReused(f"loan application {asked.id} exists with other terms")
        return row

    async def application(self, customer_id: str, application_id: str) -> AnyRow:
        """The customer's application; ``NotFound`` for another's too."""
        async with self.db.connect() as conn:
            row = await store.find_application(conn, application_id)
        if row is None or row.customer_id != customer_id:
            raise NotFound(f"loan application {application_id} is unknown")
        return row

    # -- loans --------------------------------------------------------------------------

    async def loans_of(self, customer_id: str) -> Sequence[AnyRow]:
        async with self.db.connect() as conn:
            return await store.loans_of(conn, customer_id)

    async def statement(self, customer_id: str, loan_id: str) -> tuple[AnyRow, Sequence[AnyRow]]:
        """The customer's loan and its instalments; ``NotFound`` for another's too."""
        async with self.db.connect() as conn:
            loan = _own(await store.find_loan(conn, loan_id), customer_id, loan_id)
            return loan, await store.installments_of(conn, loan_id)

    async def pay_next(self, customer_id: str, loan_id: str, now: datetime) -> None:
        """Pay the loan's next unpaid instalment (due or not) from its account, now:
        ``TransferRefused`` with the ledger's reason (insufficient funds …) if it cannot."""
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            loan = await _open_loan(tx, customer_id, loan_id)
            [row, *_] = await store.unpaid_installments(tx.conn, loan_id)
            installment = store.installment_of(row)
            transfers = installment_payment(loan_id, loan.account_id, self.bank, installment)
            refused = await apply_chain(tx, transfers, now)
            if refused is not None:
                what = f"instalment {installment.number}"
                raise await short_of_funds(tx, refused, loan.account_id, installment.payment, what)
            await record_paid(tx, loan, installment, PaidBy.REQUEST, now)

    async def pay_off(self, customer_id: str, loan_id: str, now: datetime) -> None:
        """Repay the whole loan now from its account (``domain.payoff``: the instalments due
        by today in full, the principal of the rest without its interest) and close it."""
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            loan = await _open_loan(tx, customer_id, loan_id)
            unpaid = [
                store.installment_of(r) for r in await store.unpaid_installments(tx.conn, loan_id)
            ]
            owed = payoff(unpaid, now.date())
            transfers = payoff_payment(loan_id, loan.account_id, self.bank, owed)
            refused = await apply_chain(tx, transfers, now)
            if refused is not None:
                raise await short_of_funds(tx, refused, loan.account_id, owed.total, "the payoff")
            by = PaidBy.PAYOFF.value
            for i in unpaid:
                charged = i.number in owed.due
                await store.update_installment(
                    tx,
                    loan_id,
                    i.number,
                    status=(InstallmentStatus.PAID if charged else InstallmentStatus.PREPAID).value,
                    paid_principal=i.amortization,
                    paid_interest=i.interest if charged else 0,
                    paid_at=now,
                    paid_by=by,
                )
            await close(tx, loan, LoanStatus.PAID_OFF, now)


def _own(row: AnyRow | None, customer_id: str, loan_id: str) -> AnyRow:
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"loan {loan_id} is unknown")
    return row


async def _open_loan(tx: Transaction, customer_id: str, loan_id: str) -> AnyRow:
    loan = _own(await store.find_loan(tx.conn, loan_id), customer_id, loan_id)
    if loan.status != LoanStatus.ACTIVE.value:
        raise LoanClosed(f"loan {loan_id} is {loan.status}: there is nothing left to pay")
    return loan
