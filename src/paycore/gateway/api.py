"""HTTP API of the gateway (mounted at ``/gateway``): merchant accounts for the operator,
transactions and webhook deliveries for merchants, each scoped to the caller's account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from msgspec import UNSET, Meta, UnsetType
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError
from starlette.datastructures import State

from paycore.gateway import live, metrics, service, store
from paycore.gateway.auth import AS_MERCHANT, BY_SECRET, Guard, Merchant
from paycore.gateway.domain import (
    Card,
    NotFound,
    RateLimited,
    Unauthorized,
    WebhookUrlNotAllowed,
)
from paycore.gateway.views import (
    AccountOut,
    DeliveryPage,
    NewAccountOut,
    Stats,
    TransactionOut,
    TransactionPage,
    account_stats,
    account_view,
    delivery_view,
    transaction_view,
)
from paycore.gateway.webhook_targets import TargetRefused, WebhookTargets
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.clock import as_utc, utcnow
from paycore.platform.persistence.batch import GroupWriter
from paycore.platform.persistence.uow import Database
from paycore.platform.web.admin import ADMIN_ERRORS, require_admin
from paycore.platform.web.bodies import Cents, Input, read, text
from paycore.platform.web.credentials import ADMIN_TOKEN
from paycore.platform.web.fastlane import FastRequest, client_address
from paycore.platform.web.params import UUID_PATTERN, Page, UuidId
from paycore.platform.web.routes import Routes, from_state, on_state

SESSION_COOKIE = "paycore_session"
MAX_TRANSACTION_BODY = 16 * 1024
Writer = GroupWriter[service.Prepared, store.TransactionRecord]
routes = Routes("gateway")


@dataclass(frozen=True, slots=True)
class GatewayApi:
    """What the gateway's routes (the API's and the dashboard's) need, kept on the app's
    state by ``processes.mount_api``."""

    db: Database
    guard: Guard
    writer: Writer
    keyring: Keyring
    hasher: Hasher
    admin_token: str
    targets: WebhookTargets
    cookie_path: str
    poll_seconds: float
    stream_seconds: float
    slots: live.Slots


def of(state: State) -> GatewayApi:
    return from_state(state, "gateway", GatewayApi)


Api = Annotated[GatewayApi, on_state("gateway", GatewayApi)]


async def _merchant(request: Request, api: Api) -> Merchant:
    headers = {k.lower(): v for k, v in request.headers.items()}
    cookie = request.cookies.get(SESSION_COOKIE)
    return await api.guard.merchant(headers, client_address(request.scope), cookie)


Caller = Annotated[Merchant, Depends(_merchant)]
MERCHANT_ERRORS = (Unauthorized, RateLimited)


async def _operator(request: Request, api: Api) -> None:
    require_admin(api.admin_token, request.headers.get("authorization"))


ADMIN = {"dependencies": [Depends(_operator)], "security": (ADMIN_TOKEN,)}
AS_OPERATOR = ADMIN_ERRORS


class TransactionIn(Input):
    """The seed's fields. Card rules (brand, Luhn, expiry, CVV length, amount limits) are the
    processor's to decide; here only the shapes are checked."""

    amount: Cents
    credit_card_number: Annotated[str, Meta(pattern=r"^[0-9]{1,19}$", description="digits only")]
    credit_card_name: Annotated[str, text(100)]
    credit_card_expiration_month: Annotated[int, Meta(ge=0, le=99)]
    credit_card_expiration_year: Annotated[int, Meta(ge=0, le=9999)]
    credit_card_cvv: Annotated[
        str,
        Meta(
            pattern=r"^[0-9]{1,8}$",
            description="digits, as a string (a number would lose a leading zero)",
        ),
    ]


WebhookUrl = Annotated[
    str,
    Meta(
        max_length=2048,
        pattern="^https?://",
        description="Where decided results are POSTed: an http(s) URL to a public address",
    ),
]


class AccountIn(Input):
    name: Annotated[str, text(200)]
    webhook_url: WebhookUrl | None = None


class AccountPatch(Input):
    """Only the fields given change; ``webhook_url: null`` removes the URL."""

    name: Annotated[str, text(200)] | UnsetType = UNSET
    webhook_url: WebhookUrl | UnsetType | None = UNSET
    status: Literal["active", "disabled"] | UnsetType = UNSET


async def _allowed_webhook(api: GatewayApi, given: str | None) -> str | None:
    """The URL as stored (normalised: ``http://2130706433/`` is ``http://127.0.0.1/``), or
    ``WebhookUrlNotAllowed`` if it is not an http(s) URL or webhooks may not go there."""
    if given is None:
        return None
    try:
        url = str(_HTTP_URL.validate_python(given))
    except ValidationError:
        raise WebhookUrlNotAllowed("the webhook URL is not an http:// or https:// URL") from None
    try:
        await api.targets.check(url)
    except TargetRefused as exc:
        raise WebhookUrlNotAllowed(str(exc)) from None
    return url


_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


# --- accounts (operator) -----------------------------------------------------------------


@routes.post(
    "/accounts",
    status_code=201,
    errors=(*AS_OPERATOR, WebhookUrlNotAllowed),
    summary="Create a merchant account (admin); its secret is shown once",
    **ADMIN,
)
async def create_account(body: AccountIn, api: Api) -> NewAccountOut:
    webhook_url = await _allowed_webhook(api, body.webhook_url)
    async with api.db.transaction() as tx:
        created = await service.create_account(
            tx,
            name=body.name,
            webhook_url=webhook_url,
            hasher=api.hasher,
            keyring=api.keyring,
            now=utcnow(),
        )
    return {
        **account_view(created.row),
        "secret": created.secret,
        "webhook_secret": created.webhook_secret,
    }


@routes.get("/accounts", errors=AS_OPERATOR, summary="List merchant accounts (admin)", **ADMIN)
async def list_accounts(
    api: Api,
    page: Page = 0,
    pageSize: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AccountOut]:
    async with api.db.connect() as conn:
        rows = await store.list_accounts(conn, offset=page * pageSize, limit=pageSize)
    return [account_view(r) for r in rows]


@routes.get(
    "/accounts/{account_id}",
    errors=(*AS_OPERATOR, NotFound),
    summary="A merchant account (admin)",
    **ADMIN,
)
async def get_account(account_id: UuidId, api: Api) -> AccountOut:
    async with api.db.connect() as conn:
        row = await store.find_account(conn, account_id)
    if row is None:
        raise NotFound(f"account {account_id} is unknown")
    return account_view(row)


@routes.patch(
    "/accounts/{account_id}",
    errors=(*AS_OPERATOR, NotFound, WebhookUrlNotAllowed),
    summary="Rename, set the webhook URL (null removes it), disable or enable (admin)",
    **ADMIN,
)
async def patch_account(account_id: UuidId, body: AccountPatch, api: Api) -> AccountOut:
    given_url = not isinstance(body.webhook_url, UnsetType)
    url = None if isinstance(body.webhook_url, UnsetType) else body.webhook_url
    url = await _allowed_webhook(api, url)
    changes = store.AccountChanges(
        name=body.name or None,
        webhook_url=url,
        clear_webhook=given_url and url is None,
        status=body.status or None,
    )
    return await _update(api, account_id, changes)


@routes.delete(
    "/accounts/{account_id}",
    errors=(*AS_OPERATOR, NotFound),
    summary="Disable an account (admin): its secret and sessions stop working",
    **ADMIN,
)
async def disable_account(account_id: UuidId, api: Api) -> AccountOut:
    return await _update(api, account_id, store.AccountChanges(status=store.DISABLED))


async def _update(api: GatewayApi, account_id: str, changes: store.AccountChanges) -> AccountOut:
    async with api.db.transaction() as tx:
        row = await service.update_account(tx, account_id, changes, now=utcnow())
    return account_view(row)


# --- the merchant's own ----------------------------------------------------------------------


@routes.get(
    "/account",
    errors=MERCHANT_ERRORS,
    security=AS_MERCHANT,
    summary="The calling merchant's account",
)
async def own_account(caller: Caller, api: Api) -> AccountOut:
    async with api.db.connect() as conn:
        row = await store.find_account(conn, caller.id)
    if row is None:  # deleted meanwhile: accounts are only ever disabled, but be exact
        raise NotFound(f"account {caller.id} is unknown")
    return account_view(row)


@routes.fast(
    "POST",
    "/transactions",
    status_code=202,
    body=TransactionIn,
    response_model=TransactionOut,
    errors=MERCHANT_ERRORS,
    security=BY_SECRET,
    summary="Submit a card transaction: stored pending, decided by the processor",
    max_body=MAX_TRANSACTION_BODY,
)
async def create_transaction(request: FastRequest) -> tuple[int, TransactionOut]:
    """The hot path: authenticate (a secret only: no cookie on writes), validate, seal the
    card, store the pending transaction and its event (group commit), answer 202."""
    api = of(request.state)
    merchant = await api.guard.merchant(request.headers, request.client)
    body = read(TransactionIn, request.body, request.headers.get("content-type"))
    card = Card(
        number=body.credit_card_number,
        holder=body.credit_card_name,
        exp_month=body.credit_card_expiration_month,
        exp_year=body.credit_card_expiration_year,
        cvv=body.credit_card_cvv,
    )
    prepared = service.prepare_transaction(
        merchant.id,
        body.amount,
        card,
        keyring=api.keyring,
        hasher=api.hasher,
        now=utcnow(),
    )
    row = await api.writer.submit(prepared)
    metrics.transactions_accepted.inc()
    return 202, transaction_view(row, api.keyring)


@routes.get(
    "/transactions",
    errors=MERCHANT_ERRORS,
    security=AS_MERCHANT,
    summary="The caller's transactions, newest first (cursor pagination)",
)
async def list_transactions(
    caller: Caller,
    api: Api,
    status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TransactionPage:
    async with api.db.connect() as conn:
        rows = await store.list_transactions(
            conn,
            caller.id,
            status=status,
            since=_aware(since),
            until=_aware(until),
            before=cursor,
            limit=limit + 1,
        )
    page = rows[:limit]
    return {
        "data": [transaction_view(r, api.keyring) for r in page],
        "next_cursor": page[-1].id if len(rows) > limit else None,
    }


@routes.get(
    "/stats",
    errors=MERCHANT_ERRORS,
    security=AS_MERCHANT,
    summary="Counts and amounts of the caller's transactions",
)
async def stats(caller: Caller, api: Api) -> Stats:
    return await account_stats(api.db, caller.id)


@routes.get(
    "/transactions/{transaction_id}",
    errors=(*MERCHANT_ERRORS, NotFound),
    security=AS_MERCHANT,
    summary="One of the caller's transactions (404 for another account's)",
)
async def get_transaction(caller: Caller, transaction_id: UuidId, api: Api) -> TransactionOut:
    async with api.db.connect() as conn:
        row = await store.find_transaction(conn, caller.id, transaction_id)
    if row is None:
        raise NotFound(f"transaction {transaction_id} is unknown")
    return transaction_view(row, api.keyring)


@routes.get(
    "/webhook-deliveries",
    errors=MERCHANT_ERRORS,
    security=AS_MERCHANT,
    summary="Webhook deliveries of the caller, newest first",
)
async def list_deliveries(
    caller: Caller,
    api: Api,
    transaction_id: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(pattern=UUID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DeliveryPage:
    async with api.db.connect() as conn:
        rows = await store.list_deliveries(
            conn,
            caller.id,
            transaction_id=transaction_id,
            status=status,
            before=cursor,
            limit=limit + 1,
        )
    page = rows[:limit]
    return {
        "data": [delivery_view(r) for r in page],
        "next_cursor": page[-1].id if len(rows) > limit else None,
    }


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)
