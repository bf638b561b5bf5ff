"""Banking's loans over HTTP (mounted at ``/banking``), for customers (their secret):
simulate a loan at the bank's rate (no money moves), apply for one (decided by the banking
worker), read applications, loans and a loan's statement, pay the next instalment now, pay a
loan off. Another customer's application or loan answers 404, as an unknown one does. See
docs/banking-loans.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from paycore.banking.ledger.domain import Reason, TransferRefused
from paycore.banking.loans.domain import ApplicationIdReused, LoanClosed
from paycore.banking.loans.schedule import MAX_TERM, InvalidLoan, Period, System, simulate
from paycore.banking.loans.service import Asked, Loans, bank_accounts
from paycore.banking.loans.simulation import costed, document
from paycore.banking.loans.views import (
    ApplicationOut,
    LoanOut,
    StatementOut,
    application_view,
    listed_view,
    statement_view,
)
from paycore.banking.settings import BankingSettings
from paycore.banking.web import AS_CUSTOMER, CUSTOMER_ERRORS, Customer
from paycore.platform.clock import utcnow
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.uow import Database
from paycore.platform.web.bodies import Cents, Input
from paycore.platform.web.params import UUID_PATTERN, UuidId
from paycore.platform.web.routes import Routes, on_state

routes = Routes("banking loans")


class LoansApi:
    """What the loans' routes need, kept on the app's state (``banking_loans``) by
    ``processes.mount_api``."""

    def __init__(self, loans: Loans) -> None:
        self.loans = loans

    @classmethod
    def wired(cls, db: Database, bank: dict[str, str]) -> LoansApi:
        """As an API process wires it: the bank's rate (``BankingSettings``) and its own
        accounts (by name)."""
        rate = BankingSettings().loans_monthly_rate
        return cls(Loans(db, bank=bank_accounts(bank), monthly_rate=rate))


Api = Annotated[LoansApi, on_state("banking_loans", LoansApi)]

Term = Annotated[int, Meta(ge=1, le=MAX_TERM, description=f"Monthly instalments, 1 to {MAX_TERM}")]
Method = Annotated[
    Literal["price", "sac"],
    Meta(description="price: a fixed payment; sac: a constant amortization"),
]


class SimulationIn(Input):
    """A loan to simulate at the bank's rate, paid out today."""

    principal: Cents
    term: Term
    system: Method


class ApplicationIn(Input):
    """A loan asked for, into one of the caller's accounts."""

    account_id: Annotated[
        str, Meta(pattern=UUID_PATTERN, description="One of the caller's accounts")
    ]
    principal: Cents
    term: Term
    system: Method
    monthly_income: Annotated[Cents, Meta(description="The applicant's monthly income, declared")]
    id: (
        Annotated[
            str,
            Meta(
                pattern=UUID_PATTERN,
                description="The application's id, chosen by the client (a UUID): the same id "
                "again is the same application",
            ),
        ]
        | None
    ) = None


REFUSED = tuple(
    (TransferRefused.status, reason.value, what)
    for reason, what in (
        (Reason.INSUFFICIENT_FUNDS, "The account's available balance is below what is owed"),
        (Reason.ACCOUNT_BLOCKED, "The loan's account is blocked"),
        (Reason.ACCOUNT_CLOSED, "The loan's account is closed"),
    )
)
"""The ledger's refusals a repayment may answer."""
LOAN_ERRORS = (*CUSTOMER_ERRORS, NotFound)


@routes.post(
    "/loans/simulations",
    errors=(*CUSTOMER_ERRORS, InvalidLoan),
    summary="Simulate a loan at the bank's rate, paid out today: its instalments, total "
    "interest, IOF, what is received and its effective yearly cost (no money moves)",
    **AS_CUSTOMER,
)
async def simulate_loan(customer: Customer, body: SimulationIn, api: Api) -> dict[str, Any]:
    plan = simulate(
        int(body.principal),
        api.loans.monthly_rate,
        period=Period.MONTH,
        term=body.term,
        system=System(body.system),
        start=utcnow().date(),
    )
    return document(costed(plan))


@routes.post(
    "/loans/applications",
    status_code=202,
    errors=(*LOAN_ERRORS, ApplicationIdReused),
    summary="Apply for a loan into one of the caller's accounts, at the bank's rate: accepted "
    "now (submitted), decided and paid out by the banking worker (GET it for its status)",
    **AS_CUSTOMER,
)
async def apply(customer: Customer, body: ApplicationIn, api: Api) -> ApplicationOut:
    asked = Asked(
        id=body.id or uuid7(),
        account_id=body.account_id,
        principal=int(body.principal),
        term=body.term,
        system=System(body.system),
        monthly_income=int(body.monthly_income),
    )
    return application_view(await api.loans.apply(customer.id, asked, utcnow()))


@routes.get(
    "/loans/applications/{application_id}",
    errors=LOAN_ERRORS,
    summary="One of the caller's loan applications: submitted, rejected (with the reason) or "
    "disbursed",
    **AS_CUSTOMER,
)
async def get_application(customer: Customer, application_id: UuidId, api: Api) -> ApplicationOut:
    return application_view(await api.loans.application(customer.id, application_id))


@routes.get("/loans", errors=CUSTOMER_ERRORS, summary="The caller's loans", **AS_CUSTOMER)
async def list_loans(customer: Customer, api: Api) -> list[LoanOut]:
    return [listed_view(row) for row in await api.loans.loans_of(customer.id)]


@routes.get(
    "/loans/{loan_id}",
    errors=LOAN_ERRORS,
    summary="One of the caller's loans with its statement: each instalment's status (due, "
    "overdue, paid, prepaid), what was paid and when, the principal outstanding",
    **AS_CUSTOMER,
)
async def get_loan(customer: Customer, loan_id: UuidId, api: Api) -> StatementOut:
    return await _statement(api, customer.id, loan_id)


@routes.post(
    "/loans/{loan_id}/payments",
    status_code=201,
    errors=(*LOAN_ERRORS, LoanClosed, *REFUSED),
    summary="Pay the loan's next unpaid instalment now, from its account (its principal and "
    "its interest, both or neither); answers the statement",
    **AS_CUSTOMER,
)
async def pay(customer: Customer, loan_id: UuidId, api: Api) -> StatementOut:
    await api.loans.pay_next(customer.id, loan_id, utcnow())
    return await _statement(api, customer.id, loan_id)


@routes.post(
    "/loans/{loan_id}/payoff",
    status_code=201,
    errors=(*LOAN_ERRORS, LoanClosed, *REFUSED),
    summary="Pay the loan off now, from its account: the instalments due by today in full, "
    "the principal of the others without their interest; the loan closes",
    **AS_CUSTOMER,
)
async def pay_off(customer: Customer, loan_id: UuidId, api: Api) -> StatementOut:
    await api.loans.pay_off(customer.id, loan_id, utcnow())
    return await _statement(api, customer.id, loan_id)


async def _statement(api: LoansApi, customer_id: str, loan_id: str) -> StatementOut:
    loan, rows = await api.loans.statement(customer_id, loan_id)
    return statement_view(loan, rows, utcnow().date())
