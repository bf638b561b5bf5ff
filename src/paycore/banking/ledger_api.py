"""The ledger for the operator (mounted at ``/banking/ledger``, admin token): any account, the
batch of transfers TigerBeetle-style (single, pending, post, void; linked chains; one result
per transfer), journal entries, blocking and unblocking accounts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from msgspec import Meta
from typing_extensions import TypedDict

from paycore.banking import service
from paycore.banking.api import AccountId, Currency, TransferId, balance_answer, statement_page
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store as ledger_store
from paycore.banking.ledger.domain import CURRENCIES, Kind, Limit, Status, Transfer
from paycore.banking.views import (
    AccountOut,
    BalanceOut,
    EntryOut,
    ResultOut,
    StatementPage,
    account_view,
    entry_view,
    result_view,
)
from paycore.banking.web import ADMIN, OPERATOR_ERRORS, Api, At, BankingApi, StatementWindow
from paycore.platform.clock import utcnow
from paycore.platform.errors import DomainError, NotFound
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.bodies import Cents, Input, text
from paycore.platform.web.params import UUID_PATTERN, UuidId
from paycore.platform.web.routes import Routes

routes = Routes("banking ledger")

MAX_BATCH = 2000
"""Transfers one batch request may carry."""
MAX_TIMEOUT = 366 * 24 * 3600
EntryId = Annotated[
    str,
    Path(
        pattern=f"^(expiry-)?{UUID_PATTERN[1:]}",
        description="A transfer id (a UUID), or the id of a hold's expiry: expiry-<its id>",
    ),
]


class UnknownCurrency(DomainError):
    """The ledger holds no account in this currency."""

    code = "unknown-currency"
    status = 422


class LedgerAccountIn(Input):
    kind: Annotated[str, Meta(pattern="^[a-z][a-z0-9-]{0,31}$", description="e.g. fees, loans")]
    limit: Literal["none", "debits_must_not_exceed_credits", "credits_must_not_exceed_debits"] = (
        "none"
    )
    currency: Currency = "BRL"


class LedgerTransferIn(Input):
    """One transfer of a batch. ``single`` posts at once; ``pending`` holds the amount until a
    ``post`` (its amount or less) or ``void`` names it in ``pending_id``, or its
    ``timeout_seconds`` run out; a post or void may leave out the accounts and the amount
    (the hold's). ``linked``: commits with the next transfer or not at all."""

    id: TransferId
    kind: Literal["single", "pending", "post", "void"] = "single"
    debit_account_id: AccountId | None = None
    credit_account_id: AccountId | None = None
    amount: Cents | None = None
    currency: Currency | None = None
    code: Annotated[str, text(32)] = "transfer"
    pending_id: TransferId | None = None
    timeout_seconds: Annotated[int, Meta(ge=0, le=MAX_TIMEOUT)] = 0
    linked: bool = False


class BatchIn(Input):
    transfers: Annotated[list[LedgerTransferIn], Meta(min_length=1, max_length=MAX_BATCH)]


class BatchOut(TypedDict):
    results: list[ResultOut]


class EntryDetailOut(EntryOut):
    resolved_by: EntryOut | None  # for a pending transfer: its post, void or expiry


@routes.post(
    "/ledger/accounts",
    status_code=201,
    errors=(*OPERATOR_ERRORS, UnknownCurrency),
    summary="Open a ledger account of any kind and limit (admin)",
    **ADMIN,
)
async def open_account(body: LedgerAccountIn, api: Api) -> AccountOut:
    if body.currency not in CURRENCIES:
        raise UnknownCurrency(f"accounts hold {', '.join(CURRENCIES)}, not {body.currency}")
    async with api.db.transaction() as tx:
        account_id = await ledger.open_account(
            tx, kind=body.kind, limit=Limit(body.limit), now=utcnow(), currency=body.currency
        )
    return account_view(await _account(api, account_id))


@routes.get(
    "/ledger/accounts/{account_id}",
    errors=(*OPERATOR_ERRORS, NotFound),
    summary="Any account with its balance (admin)",
    **ADMIN,
)
async def get_account(account_id: UuidId, api: Api) -> AccountOut:
    return account_view(await _account(api, account_id))


@routes.get(
    "/ledger/accounts/{account_id}/balance",
    errors=(*OPERATOR_ERRORS, NotFound),
    summary="Any account's balance now, or at an instant (?at=) (admin)",
    **ADMIN,
)
async def balance(account_id: UuidId, api: Api, at: At = None) -> BalanceOut:
    return await balance_answer(api, await _account(api, account_id), at)


@routes.get(
    "/ledger/accounts/{account_id}/statement",
    errors=(*OPERATOR_ERRORS, NotFound),
    summary="Any account's entries, oldest first, with the balance after each (admin)",
    **ADMIN,
)
async def statement(account_id: UuidId, api: Api, window: StatementWindow) -> StatementPage:
    return await statement_page(api, await _account(api, account_id), window)


@routes.post(
    "/ledger/accounts/{account_id}/block",
    errors=(*OPERATOR_ERRORS, NotFound, ledger.AccountClosed),
    summary="Block an account: it takes no new transfer until unblocked (admin)",
    **ADMIN,
)
async def block(account_id: UuidId, api: Api) -> AccountOut:
    return await _set_status(api, account_id, Status.BLOCKED)


@routes.post(
    "/ledger/accounts/{account_id}/unblock",
    errors=(*OPERATOR_ERRORS, NotFound, ledger.AccountClosed),
    summary="Unblock an account (admin)",
    **ADMIN,
)
async def unblock(account_id: UuidId, api: Api) -> AccountOut:
    return await _set_status(api, account_id, Status.OPEN)


async def _set_status(api: BankingApi, account_id: str, status: Status) -> AccountOut:
    async with api.db.transaction() as tx:
        await ledger.set_status(tx, account_id, status, utcnow())
    return account_view(await _account(api, account_id))


@routes.post(
    "/ledger/transfers",
    errors=OPERATOR_ERRORS,
    summary=f"Apply a batch of up to {MAX_BATCH} transfers in order, in one commit; one result "
    "each (admin)",
    **ADMIN,
)
async def create_transfers(body: BatchIn, api: Api) -> BatchOut:
    transfers = [_transfer(t) for t in body.transfers]
    async with api.db.transaction() as tx:
        applied = await ledger.apply(tx, transfers, utcnow(), api.known)
        service.counted(tx, applied.outcomes)
    return {"results": [result_view(o) for o in applied.outcomes]}


@routes.get(
    "/ledger/transfers/{transfer_id}",
    errors=(*OPERATOR_ERRORS, NotFound),
    summary="A journal entry; for a pending transfer, what resolved it (admin)",
    **ADMIN,
)
async def get_transfer(transfer_id: EntryId, api: Api) -> EntryDetailOut:
    async with api.db.connect() as conn:
        entry = await ledger_store.find_entry(conn, transfer_id)
        if entry is None:
            raise NotFound(f"transfer {transfer_id} is unknown")
        resolution = None
        if entry.kind is Kind.PENDING:
            resolution = await ledger_store.resolution_of(conn, entry.id)
    return {**entry_view(entry), "resolved_by": entry_view(resolution) if resolution else None}


def _transfer(given: LedgerTransferIn) -> Transfer:
    return Transfer(
        id=given.id,
        kind=Kind(given.kind),
        debit_account_id=given.debit_account_id,
        credit_account_id=given.credit_account_id,
        amount=int(given.amount or 0),  # plain cents, not the reader's type
        currency=given.currency,
        code=given.code,
        pending_id=given.pending_id,
        timeout_seconds=given.timeout_seconds,
        linked=given.linked,
    )


async def _account(api: BankingApi, account_id: str) -> AnyRow:
    async with api.db.connect() as conn:
        row = await ledger_store.find_account(conn, account_id)
    if row is None:
        raise NotFound(f"account {account_id} is unknown")
    return row
