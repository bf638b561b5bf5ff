"""Banking's HTTP API for customers (mounted at ``/banking``): sign up, accounts with their
balances and statements, deposits and withdrawals, transfers. A customer reaches only their
own accounts: another's answers 404, as an unknown one does."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta
from sqlalchemy.exc import IntegrityError

from paycore.banking import metrics, service
from paycore.banking.domain import CustomerExists, InvalidCpf, cpf_digits
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store as ledger_store
from paycore.banking.ledger.domain import (
    Kind,
    Limit,
    Reason,
    Status,
    Transfer,
    TransferIdReused,
    TransferRefused,
)
from paycore.banking.views import (
    AccountOut,
    BalanceOut,
    CustomerOut,
    NewCustomerOut,
    StatementPage,
    TransferOut,
    accepted_view,
    account_view,
    balance_view,
    customer_view,
    statement_line,
    transfer_view,
)
from paycore.banking.web import (
    AS_CUSTOMER,
    CUSTOMER_ERRORS,
    CUSTOMER_SECRET,
    Api,
    At,
    BankingApi,
    Customer,
    StatementWindow,
    Window,
    of,
)
from paycore.platform.clock import as_utc, utcnow
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.bodies import Cents, Input, read, text
from paycore.platform.web.fastlane import FastRequest
from paycore.platform.web.params import UUID_PATTERN, UuidId
from paycore.platform.web.problems import Problem
from paycore.platform.web.routes import Routes

routes = Routes("banking")

TransferId = Annotated[
    str,
    Meta(
        pattern=UUID_PATTERN,
        description="The transfer's id, chosen by the client (a UUID): the same id again is the "
        "same transfer",
    ),
]
AccountId = Annotated[str, Meta(pattern=UUID_PATTERN, description="An account's id")]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217; accounts hold BRL")]


class SignUpIn(Input):
    name: Annotated[str, text(200)]
    cpf: Annotated[
        str,
        Meta(
            pattern=r"^[0-9]{3}\.?[0-9]{3}\.?[0-9]{3}-?[0-9]{2}$",
            description="11 digits, with or without the dots and dash: 123.456.789-09",
        ),
    ]


class MovementIn(Input):
    amount: Cents
    id: TransferId | None = None
    currency: Currency = "BRL"


class TransferIn(Input):
    from_account_id: AccountId
    to_account_id: AccountId
    amount: Cents
    id: TransferId | None = None
    currency: Currency = "BRL"
    description: Annotated[str, text(140)] | None = None


# --- customers -----------------------------------------------------------------------------


@routes.post(
    "/customers",
    status_code=201,
    errors=(InvalidCpf, CustomerExists),
    summary="Become a customer (name, CPF); the secret to authenticate with is shown once",
)
async def sign_up(body: SignUpIn, api: Api) -> NewCustomerOut:
    cpf = cpf_digits(body.cpf)
    try:
        async with api.db.transaction() as tx:
            created = await service.sign_up(
                tx, name=body.name, cpf=cpf, hasher=api.hasher, now=utcnow()
            )
    except IntegrityError:  # the same CPF signed up at the same moment
        raise CustomerExists("a customer with this CPF exists already") from None
    return {**customer_view(created.row), "secret": created.secret}


@routes.get("/customer", errors=CUSTOMER_ERRORS, summary="The calling customer", **AS_CUSTOMER)
async def me(customer: Customer) -> CustomerOut:
    return customer_view(customer)


# --- accounts ------------------------------------------------------------------------------


@routes.post(
    "/accounts",
    status_code=201,
    errors=CUSTOMER_ERRORS,
    summary="Open a checking account (BRL, never overdrawn)",
    **AS_CUSTOMER,
)
async def open_account(customer: Customer, api: Api) -> AccountOut:
    async with api.db.transaction() as tx:
        row = await service.open_account(tx, customer.id, utcnow())
    return account_view(row)


@routes.get("/accounts", errors=CUSTOMER_ERRORS, summary="The caller's accounts", **AS_CUSTOMER)
async def list_accounts(customer: Customer, api: Api) -> list[AccountOut]:
    async with api.db.connect() as conn:
        rows = await ledger_store.accounts_of(conn, customer.id)
    return [account_view(r) for r in rows]


@routes.get(
    "/accounts/{account_id}",
    errors=(*CUSTOMER_ERRORS, NotFound),
    summary="One of the caller's accounts, with its balance",
    **AS_CUSTOMER,
)
async def get_account(customer: Customer, account_id: UuidId, api: Api) -> AccountOut:
    return account_view(await service.own_account(api.db, customer.id, account_id))


@routes.delete(
    "/accounts/{account_id}",
    errors=(*CUSTOMER_ERRORS, NotFound, ledger.AccountNotEmpty, ledger.AccountClosed),
    summary="Close an account: only at zero balance with nothing on hold",
    **AS_CUSTOMER,
)
async def close_account(customer: Customer, account_id: UuidId, api: Api) -> AccountOut:
    await service.own_account(api.db, customer.id, account_id)
    async with api.db.transaction() as tx:
        await ledger.set_status(tx, account_id, Status.CLOSED, utcnow())
    return account_view(await service.own_account(api.db, customer.id, account_id))


@routes.get(
    "/accounts/{account_id}/balance",
    errors=(*CUSTOMER_ERRORS, NotFound),
    summary="The account's balance now, or as it was at an instant (?at=)",
    **AS_CUSTOMER,
)
async def balance(customer: Customer, account_id: UuidId, api: Api, at: At = None) -> BalanceOut:
    row = await service.own_account(api.db, customer.id, account_id)
    return await balance_answer(api, row, at)


async def balance_answer(api: BankingApi, row: AnyRow, at: datetime | None) -> BalanceOut:
    limit = Limit(row.balance_limit)
    if at is None:
        return balance_view(ledger_store.balance_of(row), limit)
    async with api.db.connect() as conn:
        then = await ledger.balance_at(conn, row.id, as_utc(at))
    return balance_view(then, limit)


@routes.get(
    "/accounts/{account_id}/statement",
    errors=(*CUSTOMER_ERRORS, NotFound),
    summary="The account's entries, oldest first, each with the balance after it",
    **AS_CUSTOMER,
)
async def statement(
    customer: Customer, account_id: UuidId, api: Api, window: StatementWindow
) -> StatementPage:
    row = await service.own_account(api.db, customer.id, account_id)
    return await statement_page(api, row, window)


async def statement_page(api: BankingApi, row: AnyRow, window: Window) -> StatementPage:
    async with api.db.connect() as conn:
        found = await ledger_store.statement(
            conn,
            row.id,
            since=window.since,
            until=window.until,
            after_seq=window.cursor,
            limit=window.limit + 1,
        )
    limit = window.limit
    page = found[:limit]
    kind = Limit(row.balance_limit)
    return {
        "account_id": row.id,
        "data": [statement_line(e, row.id, kind) for e in page],
        "next_cursor": page[-1].seq if len(found) > limit else None,
    }


REFUSALS = {
    Reason.INSUFFICIENT_FUNDS: "The account's available balance is below the amount",
    Reason.ACCOUNT_CLOSED: "The account is closed",
    Reason.ACCOUNT_BLOCKED: "The account is blocked",
    Reason.CURRENCY_MISMATCH: "The currency is not the account's",
    Reason.ACCOUNTS_MUST_BE_DIFFERENT: "The transfer is from an account to itself",
}


def refusals(*reasons: Reason) -> tuple[tuple[int, str, str], ...]:
    """How the OpenAPI document lists the refusals (``TransferRefused``) a route may answer."""
    return tuple((TransferRefused.status, r.value, REFUSALS[r]) for r in reasons)


MOVEMENT_ERRORS = (
    *CUSTOMER_ERRORS,
    NotFound,
    TransferIdReused,
    *refusals(
        Reason.INSUFFICIENT_FUNDS,
        Reason.ACCOUNT_CLOSED,
        Reason.ACCOUNT_BLOCKED,
        Reason.CURRENCY_MISMATCH,
    ),
)


@routes.post(
    "/accounts/{account_id}/deposits",
    status_code=201,
    errors=MOVEMENT_ERRORS,
    summary="Deposit cash into the account",
    **AS_CUSTOMER,
)
async def deposit(customer: Customer, account_id: UuidId, body: MovementIn, api: Api) -> AccountOut:
    return await _cash(customer, account_id, body, api, deposit=True)


@routes.post(
    "/accounts/{account_id}/withdrawals",
    status_code=201,
    errors=MOVEMENT_ERRORS,
    summary="Withdraw cash from the account (never beyond its available balance)",
    **AS_CUSTOMER,
)
async def withdraw(
    customer: Customer, account_id: UuidId, body: MovementIn, api: Api
) -> AccountOut:
    return await _cash(customer, account_id, body, api, deposit=False)


async def _cash(
    customer: Customer, account_id: str, body: MovementIn, api: BankingApi, *, deposit: bool
) -> AccountOut:
    account = await service.own_account(api.db, customer.id, account_id)
    if body.currency != account.currency:
        detail = f"the account holds {account.currency}, not {body.currency}"
        raise TransferRefused(Reason.CURRENCY_MISMATCH, detail)
    entry = await service.cash_movement(
        api.db,
        api.cash_id,
        account_id,
        transfer_id=body.id or uuid7(),
        amount=int(body.amount),  # plain cents: Cents is the reader's type
        deposit=deposit,
        now=utcnow(),
    )
    if entry.kind is not Kind.SINGLE:  # an id of another kind of transfer
        raise TransferIdReused(f"transfer {entry.id} exists with other fields")
    return account_view(await service.own_account(api.db, customer.id, account_id))


# --- transfers -----------------------------------------------------------------------------


@routes.fast(
    "POST",
    "/transfers",
    status_code=202,
    body=TransferIn,
    response_model=TransferOut,
    errors=(
        *CUSTOMER_ERRORS,
        NotFound,
        TransferIdReused,
        *refusals(Reason.CURRENCY_MISMATCH, Reason.ACCOUNTS_MUST_BE_DIFFERENT),
    ),
    security=(CUSTOMER_SECRET,),
    summary="Transfer from one of the caller's accounts to any account: accepted now, applied "
    "by the ledger worker (GET it for its status)",
)
async def create_transfer(request: FastRequest) -> tuple[int, TransferOut]:
    """The hot path (the fast lane): the credential's form, the body, then the customer and
    the paying account in one read (kept: ``service.Payers``); the request and its event
    written by group commit."""
    api = of(request.state)
    authorization = request.headers.get("authorization")
    secret = service.secret_of(authorization)
    try:
        body = read(TransferIn, request.body, request.headers.get("content-type"))
    except Problem:  # what is wrong with a body is said only to a customer
        await service.authenticate(api.db, api.hasher, authorization)
        raise
    payer = await api.payers.find(api.hasher, secret, body.from_account_id)
    if body.currency != payer.currency:
        detail = f"the account holds {payer.currency}, not {body.currency}"
        raise TransferRefused(Reason.CURRENCY_MISMATCH, detail)
    if body.to_account_id == body.from_account_id:
        detail = "a transfer goes from an account to another"
        raise TransferRefused(Reason.ACCOUNTS_MUST_BE_DIFFERENT, detail)
    transfer = Transfer(
        id=body.id or uuid7(),
        kind=Kind.SINGLE,
        debit_account_id=body.from_account_id,
        credit_account_id=body.to_account_id,
        amount=int(body.amount),
        currency=body.currency,
        code="transfer",
    )
    item = service.request(payer.customer_id, transfer, body.description or "", utcnow())
    try:
        await api.requests.submit(item)
    except IntegrityError:
        row = await service.request_row(api.db, transfer.id)
        if row is None:
            raise
        if not service.same_request(row, item):
            raise TransferIdReused(f"transfer {transfer.id} exists with other fields") from None
        return 202, transfer_view(row)
    metrics.transfers_accepted.inc()
    return 202, accepted_view(item)


@routes.get(
    "/transfers/{transfer_id}",
    errors=(*CUSTOMER_ERRORS, NotFound),
    summary="A transfer the caller asked for: pending, posted or rejected (with the reason)",
    **AS_CUSTOMER,
)
async def get_transfer(customer: Customer, transfer_id: UuidId, api: Api) -> TransferOut:
    return transfer_view(await service.find_request(api.db, customer.id, transfer_id))
