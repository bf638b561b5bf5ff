"""Public HTTP API of the payments context, the Rinha de Backend 2025 contract: served alone at
the root (port 9999) or mounted at ``/payments``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query
from starlette.datastructures import State
from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.payments import domain, metrics, service
from paycore.payments.domain import (
    DEFAULT,
    FALLBACK,
    InvalidWindow,
    Payment,
    parse_bound,
)
from paycore.platform.money import from_cents
from paycore.platform.web.admin import ADMIN_ERRORS, require_admin
from paycore.platform.web.bodies import Cents, Input, read
from paycore.platform.web.credentials import ADMIN_TOKEN
from paycore.platform.web.fastlane import FastRequest
from paycore.platform.web.responses import Money
from paycore.platform.web.routes import Routes, from_state, on_state

MAX_BODY = 4096
routes = Routes("payments")


@dataclass(frozen=True, slots=True)
class PaymentsApi:
    """What the routes need, kept on the app's state by ``processes.mount_api``: how a payment
    is made durable (``accept``: on the broker, or recorded here), where the payments are
    (``databases``: this instance's, and its siblings' if each has its own), and the purge needs
    ``admin_token`` unless ``open_purge`` (the Rinha deployment's contract)."""

    databases: service.Databases
    accept: Callable[[Payment], Awaitable[None]]
    admin_token: str = ""
    open_purge: bool = False


def of(state: State) -> PaymentsApi:
    return from_state(state, "payments", PaymentsApi)


Api = Annotated[PaymentsApi, on_state("payments", PaymentsApi)]


class PaymentIn(Input):
    """``{"correlationId": "<uuid>", "amount": 19.90}``."""

    correlationId: uuid.UUID
    amount: Cents


class Accepted(TypedDict):
    correlationId: str
    status: str


class Totals(TypedDict):
    totalRequests: int
    totalAmount: Money


class Summary(TypedDict):
    default: Totals
    fallback: Totals


class Purged(TypedDict):
    message: str


@routes.fast(
    "POST",
    "/payments",
    status_code=202,
    body=PaymentIn,
    response_model=Accepted,
    summary="Take a payment (processed asynchronously, exactly once)",
    max_body=MAX_BODY,
)
async def take_payment(request: FastRequest) -> tuple[int, Accepted]:
    """The hot path: checked, made durable (on the broker, or recorded here), 202."""
    body = read(PaymentIn, request.body, request.headers.get("content-type"))
    payment = Payment(str(body.correlationId), body.amount)
    await of(request.state).accept(payment)
    metrics.payments_accepted.inc()
    return 202, {"correlationId": payment.correlation_id, "status": "accepted"}


TIME = {
    "json_schema_extra": {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "maxLength": 0},
        ]
    }
}
"""A window bound: an ISO 8601 time (``2025-07-15T12:34:56.000Z``), or empty for none (as a
client building its query from unset values sends it)."""


@routes.get(
    "/payments-summary",
    errors=(InvalidWindow,),
    summary="Payments stored by each processor in a window",
)
async def payments_summary(
    api: Api,
    start: Annotated[str | None, Query(alias="from", description="Inclusive", **TIME)] = None,
    end: Annotated[str | None, Query(alias="to", description="Inclusive", **TIME)] = None,
) -> Summary:
    start_ms, end_ms = parse_bound(start, upper=False), parse_bound(end, upper=True)
    found = await service.summary(api.databases, start_ms, end_ms)
    return {"default": _totals(found[DEFAULT]), "fallback": _totals(found[FALLBACK])}


def _totals(totals: domain.Totals) -> Totals:
    return {"totalRequests": totals.requests, "totalAmount": from_cents(totals.amount_cents)}


async def _may_purge(api: Api, authorization: Annotated[str | None, Header()] = None) -> None:
    """The admin token, unless the deployment opened the purge (PAYCORE_PAYMENTS_OPEN_PURGE)."""
    if not api.open_purge:
        require_admin(api.admin_token, authorization)


@routes.post(
    "/purge-payments",
    aliases=("/payments-purge",),
    errors=ADMIN_ERRORS,
    security=(ADMIN_TOKEN,),
    summary="Delete every payment (test resets; the admin token unless the deployment opened it)",
    dependencies=[Depends(_may_purge)],
)
async def purge(api: Api) -> Purged:
    await service.purge(api.databases)
    return {"message": "payments purged"}
