"""HTTP API of the gateway (mounted at ``/gateway``): merchant accounts for the operator,
transactions and webhook deliveries for merchants, each scoped to the caller's account.

(No ``from __future__ import annotations`` here: the routes' dependency annotations refer to
names local to :func:`router`, which FastAPI can only see when they are evaluated at once.)"""

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, BeforeValidator, ConfigDict, Field

from paycore.gateway import metrics, service, store
from paycore.gateway.auth import Authenticator, Merchant, Sessions, admin_allowed, bearer
from paycore.gateway.domain import STATUSES, Card
from paycore.gateway.webhook_targets import TargetRefused, WebhookTargets
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.clock import iso, utcnow
from paycore.platform.money import from_cents, to_cents
from paycore.platform.persistence.batch import GroupWriter
from paycore.platform.persistence.uow import Database
from paycore.platform.web.http import (
    JSONResponse,
    Problem,
    WithHeaders,
    body_too_large,
    client_address,
    parse_body,
)
from paycore.platform.web.ratelimit import FailureLimit, RateLimiter, retry_after

SESSION_COOKIE = "paycore_session"
TRANSACTION_PATH = "/transactions"
MAX_TRANSACTION_BODY = 16 * 1024
Writer = GroupWriter[service.Prepared, dict[str, Any]]


def _cvv_text(value: object) -> object:
    """The seed sends the CVV as a number; a string keeps leading zeros."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class TransactionIn(BaseModel):
    """The seed's fields. Card rules (brand, Luhn, expiry, CVV length, amount limits) are the
    processor's to decide; here only the shapes are checked."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    amount: Decimal = Field(
        gt=0, max_digits=15, decimal_places=2, description='e.g. 10.50 or "10.50"'
    )
    credit_card_number: str = Field(pattern=r"^[0-9]{1,19}$", description="digits only")
    credit_card_name: str = Field(min_length=1, max_length=100)
    credit_card_expiration_month: int = Field(strict=True, ge=0, le=99)
    credit_card_expiration_year: int = Field(strict=True, ge=0, le=9999)
    credit_card_cvv: Annotated[str, BeforeValidator(_cvv_text)] = Field(
        pattern=r"^[0-9]{1,8}$", description="digits, as a string (or a number)"
    )


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    webhook_url: AnyHttpUrl | None = Field(None, description="Where decided results are POSTed")


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str | None = Field(None, min_length=1, max_length=200)
    webhook_url: AnyHttpUrl | None = None
    status: Literal["active", "disabled"] | None = None


class CardOut(BaseModel):
    brand: str | None
    last4: str
    exp_month: int
    exp_year: int
    holder: str
    fingerprint: str


class TransactionOut(BaseModel):
    id: str
    account_id: str
    amount: Decimal
    status: str
    error_message: str
    card: CardOut
    created_at: str
    decided_at: str | None


class TransactionPage(BaseModel):
    data: list[TransactionOut]
    next_cursor: str | None


class AccountOut(BaseModel):
    id: str
    name: str
    status: str
    webhook_url: str | None
    secret_hint: str
    created_at: str
    updated_at: str


class NewAccountOut(AccountOut):
    secret: str = Field(description="Shown this once; only a keyed hash is stored")
    webhook_secret: str = Field(description="Signs webhook deliveries; shown this once")


def transaction_view(row: Any) -> dict[str, Any]:
    """A transaction as merchants see it (the API, the dashboard, its live stream)."""
    m = row if isinstance(row, Mapping) else row._mapping
    return {
        "id": m["id"],
        "account_id": m["account_id"],
        "amount": from_cents(m["amount_cents"]),
        "status": m["status"],
        "error_message": m["error_message"],
        "card": {
            "brand": m["brand"],
            "last4": m["last4"],
            "exp_month": m["exp_month"],
            "exp_year": m["exp_year"],
            "holder": m["holder"],
            "fingerprint": m["fingerprint"],
        },
        "created_at": iso(m["created_at"]),
        "decided_at": iso(m["decided_at"]) if m["decided_at"] else None,
    }


def account_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "webhook_url": row.webhook_url,
        "secret_hint": row.secret_hint,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def delivery_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "transaction_id": row.transaction_id,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "delivered_at": iso(row.delivered_at) if row.delivered_at else None,
    }


async def account_stats(db: Database, account_id: str) -> dict[str, Any]:
    """Count and amount of the account's transactions by status."""
    async with db.connect() as conn:
        counts = await store.status_counts(conn, account_id)
    figures = {s: counts.get(s, (0, 0)) for s in STATUSES}
    return {s: {"count": n, "amount": from_cents(cents)} for s, (n, cents) in figures.items()}


def unauthorized(detail: str = "A valid account secret is required.") -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


class Guard:
    """Authenticates merchants (secret, or the dashboard's session cookie on reads) and
    applies the per-account rate limit. Every secret offered (API calls, dashboard logins)
    goes through :meth:`by_secret`: a client address that offered too many bad or disabled
    secrets is refused (429) until its failure window ends, even with a good secret."""

    def __init__(
        self,
        auth: Authenticator,
        limiter: RateLimiter,
        sessions: Sessions,
        failures: FailureLimit,
    ) -> None:
        self.auth = auth
        self.limiter = limiter
        self.sessions = sessions
        self.failures = failures

    async def merchant(
        self, headers: Mapping[str, str], client: str, cookie: str | None = None
    ) -> Merchant:
        """The calling account, rate-limited; a 401 or 429 ``Problem`` otherwise."""
        credential = bearer(headers.get("authorization"), headers.get("x-token"))
        if credential is not None:
            merchant = await self.by_secret(credential, client)
        elif (session := self.sessions.read(cookie, time.time())) is not None:
            found = await self.auth.by_id(session.account_id)
            if found is None:
                raise unauthorized("The account is disabled.")
            merchant = found
        else:
            raise unauthorized()
        wait = self.limiter.take(merchant.id)
        if wait:
            raise Problem(
                429,
                "rate-limited",
                f"Too many requests for this account; retry in {retry_after(wait)} s.",
                headers={"Retry-After": retry_after(wait)},
            )
        return merchant

    async def by_secret(self, secret: str, client: str) -> Merchant:
        """The active account holding ``secret``; a 401 ``Problem`` (counted against the
        client's address) if there is none, a 429 while the address is shut out."""
        wait = self.failures.wait(client)
        if wait:
            raise Problem(
                429,
                "rate-limited",
                "Too many invalid account secrets from this address; "
                f"retry in {retry_after(wait)} s.",
                headers={"Retry-After": retry_after(wait)},
            )
        merchant = await self.auth.by_secret(secret)
        if merchant is None:
            self.failures.fail(client)
            raise unauthorized("The account secret is invalid or the account is disabled.")
        return merchant


def transaction_acceptor(
    guard: Guard, writer: Writer, *, keyring: Keyring, hasher: Hasher
) -> WithHeaders:
    """``POST /transactions``, the hot path: authenticate, validate, seal the card, store the
    pending transaction and its event (group commit), answer 202. Served by the fast lane and
    documented as a regular route."""

    async def accept(body: bytes, headers: Mapping[str, str], client: str) -> tuple[int, Any]:
        merchant = await guard.merchant(headers, client)  # a secret only: no cookie on writes
        request = parse_body(TransactionIn, body)
        card = Card(
            number=request.credit_card_number,
            holder=request.credit_card_name,
            exp_month=request.credit_card_expiration_month,
            exp_year=request.credit_card_expiration_year,
            cvv=request.credit_card_cvv,
        )
        cents, now = to_cents(request.amount), utcnow()
        prepared = service.prepare_transaction(
            merchant.id, cents, card, keyring=keyring, hasher=hasher, now=now
        )
        row = await writer.submit(prepared)
        metrics.transactions_accepted.inc()
        return 202, transaction_view(row)

    return WithHeaders(accept, max_body=MAX_TRANSACTION_BODY)


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def router(
    db: Database,
    guard: Guard,
    accept: WithHeaders,
    *,
    admin_token: str,
    keyring: Keyring,
    hasher: Hasher,
    targets: WebhookTargets,
) -> APIRouter:
    api = APIRouter(tags=["gateway"])

    async def merchant(request: Request) -> Merchant:
        return await guard.merchant(
            _headers(request), client_address(request.scope), request.cookies.get(SESSION_COOKIE)
        )

    async def allowed_webhook(url: AnyHttpUrl | None) -> str | None:
        """The URL as stored, or a 422 if webhooks may not go there."""
        if url is None:
            return None
        try:
            await targets.check(str(url))
        except TargetRefused as exc:
            raise Problem(422, "webhook-url-not-allowed", str(exc)) from None
        return str(url)

    async def operator(request: Request) -> None:
        if not admin_token:
            raise Problem(
                503,
                "admin-disabled",
                "Account administration is off: set PAYCORE_ADMIN_TOKEN to enable it.",
            )
        offered = bearer(request.headers.get("authorization"), None)
        if not admin_allowed(admin_token, offered):
            raise Problem(
                401,
                "unauthorized",
                "The admin token is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    Caller = Annotated[Merchant, Depends(merchant)]
    admin: list[Any] = [Depends(operator)]

    # --- accounts (operator) -----------------------------------------------------------

    @api.post(
        "/accounts",
        status_code=201,
        response_model=NewAccountOut,
        dependencies=admin,
        summary="Create a merchant account (admin); its secret is shown once",
    )
    async def create_account(body: AccountIn) -> Response:
        webhook_url = await allowed_webhook(body.webhook_url)
        async with db.transaction() as tx:
            created = await service.create_account(
                tx,
                name=body.name,
                webhook_url=webhook_url,
                hasher=hasher,
                keyring=keyring,
                now=utcnow(),
            )
        content = {
            **account_view(created.row),
            "secret": created.secret,
            "webhook_secret": created.webhook_secret,
        }
        return JSONResponse(content, status_code=201)

    @api.get(
        "/accounts",
        response_model=list[AccountOut],
        dependencies=admin,
        summary="List merchant accounts (admin)",
    )
    async def list_accounts(
        page: Annotated[int, Query(ge=0)] = 0, pageSize: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> Response:
        async with db.connect() as conn:
            rows = await store.list_accounts(conn, offset=page * pageSize, limit=pageSize)
        return JSONResponse([account_view(r) for r in rows])

    @api.get(
        "/accounts/{account_id}",
        response_model=AccountOut,
        dependencies=admin,
        summary="A merchant account (admin)",
    )
    async def get_account(account_id: str) -> Response:
        async with db.connect() as conn:
            row = await store.find_account(conn, account_id)
        if row is None:
            raise Problem(404, "not-found", f"account {account_id} is unknown")
        return JSONResponse(account_view(row))

    @api.patch(
        "/accounts/{account_id}",
        response_model=AccountOut,
        dependencies=admin,
        summary="Rename, set the webhook URL (null removes it), disable or enable (admin)",
    )
    async def patch_account(account_id: str, body: AccountPatch) -> Response:
        changes = _changes(body)
        if "webhook_url" in changes:
            changes["webhook_url"] = await allowed_webhook(changes["webhook_url"])
        return await _update(account_id, changes)

    @api.delete(
        "/accounts/{account_id}",
        response_model=AccountOut,
        dependencies=admin,
        summary="Disable an account (admin): its secret and sessions stop working",
    )
    async def disable_account(account_id: str) -> Response:
        return await _update(account_id, {"status": store.DISABLED})

    async def _update(account_id: str, changes: dict[str, Any]) -> Response:
        try:
            async with db.transaction() as tx:
                row = await service.update_account(tx, account_id, changes, now=utcnow())
        except service.NotFound as exc:
            raise Problem(404, exc.code, str(exc)) from exc
        return JSONResponse(account_view(row))

    # --- the merchant's own -------------------------------------------------------------

    @api.get("/account", response_model=AccountOut, summary="The calling merchant's account")
    async def own_account(caller: Caller) -> Response:
        async with db.connect() as conn:
            row = await store.find_account(conn, caller.id)
        return JSONResponse(account_view(row))

    @api.post(
        TRANSACTION_PATH,
        status_code=202,
        response_model=TransactionOut,
        summary="Submit a card transaction: stored pending, decided by the processor",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": TransactionIn.model_json_schema()}},
            }
        },
    )
    async def create_transaction(request: Request) -> Response:
        body = await request.body()
        if len(body) > accept.max_body:
            raise body_too_large(accept.max_body)
        status, content = await accept.handle(
            body, _headers(request), client_address(request.scope)
        )
        return JSONResponse(content, status_code=status)

    @api.get(
        TRANSACTION_PATH,
        response_model=TransactionPage,
        summary="The caller's transactions, newest first (cursor pagination)",
    )
    async def list_transactions(
        caller: Caller,
        status: Annotated[Literal["pending", "approved", "rejected"] | None, Query()] = None,
        since: Annotated[datetime | None, Query(alias="from")] = None,
        until: Annotated[datetime | None, Query(alias="to")] = None,
        cursor: Annotated[str | None, Query(max_length=36)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        async with db.connect() as conn:
            rows = await store.list_transactions(
                conn,
                caller.id,
                status=status,
                since=_aware(since),
                until=_aware(until),
                before=cursor,
                limit=limit + 1,
            )
        return _page(rows, limit, transaction_view)

    @api.get("/stats", summary="Counts and amounts of the caller's transactions by status")
    async def stats(caller: Caller) -> Response:
        return JSONResponse(await account_stats(db, caller.id))

    @api.get(
        TRANSACTION_PATH + "/{transaction_id}",
        response_model=TransactionOut,
        summary="One of the caller's transactions (404 for another account's)",
    )
    async def get_transaction(caller: Caller, transaction_id: str) -> Response:
        async with db.connect() as conn:
            row = await store.find_transaction(conn, caller.id, transaction_id)
        if row is None:
            raise Problem(404, "not-found", f"transaction {transaction_id} is unknown")
        return JSONResponse(transaction_view(row))

    @api.get("/webhook-deliveries", summary="Webhook deliveries of the caller, newest first")
    async def list_deliveries(
        caller: Caller,
        transaction_id: Annotated[str | None, Query(max_length=36)] = None,
        status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
        cursor: Annotated[str | None, Query(max_length=36)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        async with db.connect() as conn:
            rows = await store.list_deliveries(
                conn,
                caller.id,
                transaction_id=transaction_id,
                status=status,
                before=cursor,
                limit=limit + 1,
            )
        return _page(rows, limit, delivery_view)

    return api


def _changes(body: AccountPatch) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        if name != "webhook_url" and value is None:
            raise Problem(422, "validation-error", f"{name} cannot be null")
        changes[name] = value
    return changes


def _aware(moment: datetime | None) -> datetime | None:
    """Query timestamps without an offset are taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _page(rows: Sequence[Any], limit: int, view: Callable[[Any], dict[str, Any]]) -> Response:
    """One page of a keyset listing fetched with ``limit + 1`` rows: the extra row only says
    whether there is a next page."""
    page = rows[:limit]
    cursor = page[-1].id if len(rows) > limit else None
    return JSONResponse({"data": [view(r) for r in page], "next_cursor": cursor})
