"""Public HTTP API of the payments context, the Rinha de Backend 2025 contract: served alone at
the root (port 9999) or mounted at ``/payments``."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from fastapi import Query
from starlette.datastructures import State
from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.payments import domain, metrics, service
from paycore.payments.domain import (
    DEFAULT,
    FALLBACK,
    InvalidPayment,
    InvalidWindow,
    new_payment,
    parse_bound,
)
from paycore.platform.messaging.bus import Bus
from paycore.platform.money import from_cents
from paycore.platform.persistence.uow import Database
from paycore.platform.web.fastlane import FastRequest
from paycore.platform.web.problems import Problem
from paycore.platform.web.routes import Routes, from_state, on_state

MAX_BODY = 4096
routes = Routes("payments")


@dataclass(frozen=True, slots=True)
class PaymentsApi:
    """What the routes need, kept on the app's state by ``processes.mount_api``."""

    db: Database
    bus: Bus


def of(state: State) -> PaymentsApi:
    return from_state(state, "payments", PaymentsApi)


Api = Annotated[PaymentsApi, on_state("payments", PaymentsApi)]


class PaymentIn(msgspec.Struct):
    """``{"correlationId": "<uuid>", "amount": 19.90}``: the amount is read exactly from its
    JSON text (never through a float) and must be a JSON number."""

    correlationId: str
    amount: msgspec.Raw

    def exact_amount(self) -> Decimal | None:
        text = bytes(self.amount).decode()
        return Decimal(text) if text[:1] in "-0123456789" else None


_decoder = msgspec.json.Decoder(PaymentIn)
PAYMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["correlationId", "amount"],
    "properties": {
        "correlationId": {"type": "string", "format": "uuid"},
        "amount": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
    },
}


class Accepted(TypedDict):
    correlationId: str
    status: str


class Totals(TypedDict):
    totalRequests: int
    totalAmount: Decimal


class Summary(TypedDict):
    default: Totals
    fallback: Totals


class Purged(TypedDict):
    message: str


@routes.fast(
    "POST",
    "/payments",
    status_code=202,
    body=PAYMENT_SCHEMA,
    response_model=Accepted,
    errors=(InvalidPayment,),
    summary="Take a payment (processed asynchronously, exactly once)",
    max_body=MAX_BODY,
)
async def take_payment(request: FastRequest) -> tuple[int, Accepted]:
    """The hot path: checked, handed to the broker (durable before the answer), 202."""
    try:
        decoded = _decoder.decode(request.body)
    except msgspec.DecodeError as exc:
        malformed = "malformed" in str(exc).lower()
        code = "malformed-json" if malformed else "validation-error"
        raise Problem(400 if malformed else 422, code, str(exc)) from None
    except RecursionError:  # msgspec skipping an amount of arrays nested 2,000 deep
        raise Problem(400, "malformed-json", "The body is nested too deeply.") from None
    payment = new_payment(decoded.correlationId, decoded.exact_amount())
    await service.accept(of(request.state).bus, payment)
    metrics.payments_accepted.inc()
    return 202, {"correlationId": payment.correlation_id, "status": "accepted"}


@routes.get(
    "/payments-summary",
    errors=(InvalidWindow,),
    summary="Payments stored by each processor in a window",
)
async def payments_summary(
    api: Api,
    start: Annotated[str | None, Query(alias="from", description="ISO 8601, inclusive")] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601, inclusive")] = None,
) -> Summary:
    start_ms, end_ms = parse_bound(start, upper=False), parse_bound(end, upper=True)
    async with api.db.connect() as conn:
        found = await service.summary(conn, start_ms, end_ms)
    return {"default": _totals(found[DEFAULT]), "fallback": _totals(found[FALLBACK])}


def _totals(totals: domain.Totals) -> Totals:
    return {"totalRequests": totals.requests, "totalAmount": from_cents(totals.amount_cents)}


@routes.post(
    "/purge-payments",
    aliases=("/payments-purge",),
    summary="Delete every payment (test resets)",
)
async def purge(api: Api) -> Purged:
    await service.purge(api.db)
    return {"message": "payments purged"}
