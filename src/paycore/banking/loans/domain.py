"""The rules of loans a customer takes, beyond the plan's: whom the bank lends to (``decide``),
what each movement of money is in the ledger (``disbursement``, ``installment_payment``,
``payoff``), and what each status means. Standard library only.

Every ledger transfer of a loan has an id derived from the loan's id (and the instalment's
number): a decision redelivered, a worker killed mid-batch, a payment asked for while the
scheduled run takes the same instalment all name the same transfer, which the ledger applies
once. Amounts are centavos; the rate a ``Decimal`` fraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum

from paycore.banking.ledger.domain import Status, Transfer, single, units
from paycore.banking.loans.schedule import PRECISION, Installment, Plan
from paycore.platform.errors import DomainError

CURRENCY = "BRL"
LOAN_ACCOUNT_KIND = "loans"
"""The bank's account loans are paid out of and their principal comes back to."""
INTEREST_ACCOUNT_KIND = "loan-interest"
"""The bank's account a loan's interest is paid into."""
IOF_ACCOUNT_KIND = "iof"
"""The bank's account the IOF kept out of a loan is paid into (owed to the Receita)."""


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"  # accepted, waiting for the banking worker's decision
    REJECTED = "rejected"  # with the reason (``Rejection``, or the ledger's)
    DISBURSED = "disbursed"  # approved and paid out, in one commit


class LoanStatus(StrEnum):
    ACTIVE = "active"  # instalments left to pay
    PAID = "paid"  # every instalment paid
    PAID_OFF = "paid-off"  # repaid early in one payment


class InstallmentStatus(StrEnum):
    DUE = "due"  # not paid, its due date not past
    OVERDUE = "overdue"  # not paid, its due date past (or a collection found funds short)
    PAID = "paid"  # paid in full
    PREPAID = "prepaid"  # its amortization paid by an early payoff, its interest not charged


UNPAID = (InstallmentStatus.DUE, InstallmentStatus.OVERDUE)


class PaidBy(StrEnum):
    """What paid an instalment."""

    REQUEST = "request"  # the borrower, over HTTP
    SCHEDULE = "schedule"  # the banking worker, on its due date
    PAYOFF = "payoff"  # an early payoff of the whole loan


class Rejection(StrEnum):
    """Why the bank does not lend: stable codes."""

    ACCOUNT_NOT_FOUND = "account-not-found"
    ACCOUNT_CLOSED = "account-closed"
    ACCOUNT_BLOCKED = "account-blocked"
    PRINCIPAL_OUT_OF_BOUNDS = "principal-out-of-bounds"
    TERM_OUT_OF_BOUNDS = "term-out-of-bounds"
    TOO_MANY_OPEN_LOANS = "too-many-open-loans"
    INCOME_TOO_LOW = "installment-above-income-share"
    INVALID_LOAN = "invalid-loan"  # terms the plan itself refuses


class ApplicationIdReused(DomainError):
    """The application id names another application (other fields, or another customer's)."""

    code = "loan-application-id-reused"
    status = 409


class LoanClosed(DomainError):
    """The loan is repaid (paid or paid off): there is nothing left to pay."""

    code = "loan-closed"
    status = 409


# --- the decision --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """The bank's lending rule (``BankingSettings.loans_*``)."""

    max_income_share: Decimal
    min_principal: int
    max_principal: int
    min_term: int
    max_term: int
    max_open: int


@dataclass(frozen=True, slots=True)
class Applied:
    """What the rule looks at: the terms asked for, the income declared, the account's status
    (``None``: not the applicant's), the applicant's open loans and the loan's plan."""

    principal: int
    term: int
    monthly_income: int
    account_status: Status | None
    open_loans: int
    plan: Plan


@dataclass(frozen=True, slots=True)
class Decision:
    """Approved (``rejection`` is None) or why not, with a sentence saying it."""

    rejection: Rejection | None = None
    detail: str = ""

    @property
    def approved(self) -> bool:
        return self.rejection is None


def decide(policy: Policy, applied: Applied) -> Decision:
    """The first rule the application breaks, in this order: the account is the applicant's,
    open and not blocked; the principal and the term are within the bank's bounds; the
    applicant has fewer than ``max_open`` loans open; the plan's largest instalment is at
    most ``max_income_share`` of the declared monthly income. None broken: approved."""
    if applied.account_status is None:
        return Decision(Rejection.ACCOUNT_NOT_FOUND, "the account is not the applicant's")
    if applied.account_status is Status.CLOSED:
        return Decision(Rejection.ACCOUNT_CLOSED, "the account is closed")
    if applied.account_status is Status.BLOCKED:
        return Decision(Rejection.ACCOUNT_BLOCKED, "the account is blocked")
    if not policy.min_principal <= applied.principal <= policy.max_principal:
        return Decision(
            Rejection.PRINCIPAL_OUT_OF_BOUNDS,
            f"the bank lends {units(policy.min_principal)} to {units(policy.max_principal)}, "
            f"not {units(applied.principal)}",
        )
    if not policy.min_term <= applied.term <= policy.max_term:
        return Decision(
            Rejection.TERM_OUT_OF_BOUNDS,
            f"the term is {policy.min_term} to {policy.max_term} months, not {applied.term}",
        )
    if applied.open_loans >= policy.max_open:
        return Decision(
            Rejection.TOO_MANY_OPEN_LOANS,
            f"the applicant has {applied.open_loans} loans open, {policy.max_open} at most",
        )
    largest = max(i.payment for i in applied.plan.installments)
    with localcontext(prec=PRECISION):
        ceiling = applied.monthly_income * policy.max_income_share
    if largest > ceiling:
        return Decision(
            Rejection.INCOME_TOO_LOW,
            f"the largest instalment, {units(largest)}, is above {_percent(policy)} of the "
            f"declared monthly income of {units(applied.monthly_income)}",
        )
    return Decision()


def _percent(policy: Policy) -> str:
    with localcontext(prec=PRECISION):
        return f"{(policy.max_income_share * 100).normalize():f} %"


# --- the ledger's transfers ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BankAccounts:
    """The ids of the bank's own accounts a loan moves money between."""

    loans: str
    interest: str
    iof: str


def disbursement(
    loan_id: str, account_id: str, bank: BankAccounts, principal: int, iof: int
) -> list[Transfer]:
    """The loan paid out of ``bank:loans``: the principal less the IOF into the borrower's
    account, the IOF to ``bank:iof``, as one linked chain (both or neither)."""
    return chain(
        [
            single(f"loan-{loan_id}", bank.loans, account_id, principal - iof, "loan"),
            single(f"loan-{loan_id}-iof", bank.loans, bank.iof, iof, "loan-iof"),
        ]
    )


def installment_payment(
    loan_id: str, account_id: str, bank: BankAccounts, installment: Installment
) -> list[Transfer]:
    """Instalment ``number`` paid from the borrower's account: its amortization to
    ``bank:loans``, its interest to ``bank:loan-interest``, as one linked chain."""
    number = installment.number
    return chain(
        [
            single(
                f"loan-{loan_id}-{number}-principal",
                account_id,
                bank.loans,
                installment.amortization,
                "loan-principal",
            ),
            single(
                f"loan-{loan_id}-{number}-interest",
                account_id,
                bank.interest,
                installment.interest,
                "loan-interest",
            ),
        ]
    )


@dataclass(frozen=True, slots=True)
class Payoff:
    """An early payoff: the principal outstanding, the interest of the instalments already due
    (``due``: paid in full) and none of the others' (``prepaid``: their interest removed)."""

    principal: int
    interest: int
    due: tuple[int, ...]
    prepaid: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.principal + self.interest


def payoff(unpaid: Sequence[Installment], today: date) -> Payoff:
    """What paying off the loan on ``today`` costs, given its unpaid instalments: every
    instalment due by today in full, and the amortization of the rest. No interest is charged
    for the days since the last due date (none pro rata)."""
    due = [i for i in unpaid if i.due_date <= today]
    return Payoff(
        principal=sum(i.amortization for i in unpaid),
        interest=sum(i.interest for i in due),
        due=tuple(i.number for i in due),
        prepaid=tuple(i.number for i in unpaid if i.due_date > today),
    )


def payoff_payment(
    loan_id: str, account_id: str, bank: BankAccounts, owed: Payoff
) -> list[Transfer]:
    """The payoff from the borrower's account: principal to ``bank:loans``, interest to
    ``bank:loan-interest``, as one linked chain."""
    return chain(
        [
            single(
                f"loan-{loan_id}-payoff-principal",
                account_id,
                bank.loans,
                owed.principal,
                "loan-payoff",
            ),
            single(
                f"loan-{loan_id}-payoff-interest",
                account_id,
                bank.interest,
                owed.interest,
                "loan-interest",
            ),
        ]
    )


def chain(transfers: Sequence[Transfer]) -> list[Transfer]:
    """The transfers that move something (an amount of 0 is no transfer: the ledger refuses
    it), each linked to the next: they commit together or not at all."""
    moving = [t for t in transfers if t.amount > 0]
    return [
        Transfer(
            id=t.id,
            kind=t.kind,
            debit_account_id=t.debit_account_id,
            credit_account_id=t.credit_account_id,
            amount=t.amount,
            currency=t.currency,
            code=t.code,
            linked=k < len(moving) - 1,
        )
        for k, t in enumerate(moving)
    ]


# --- statuses ------------------------------------------------------------------------------


def shown_status(stored: InstallmentStatus, due_date: date, today: date) -> InstallmentStatus:
    """An instalment's status as of ``today``: a due one whose due date has passed is overdue,
    whether or not a collection has tried it yet."""
    if stored is InstallmentStatus.DUE and due_date < today:
        return InstallmentStatus.OVERDUE
    return stored
