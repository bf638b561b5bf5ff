"""Public HTTP API of the payments context, the Rinha de Backend 2025 contract: served alone at
the root (port 9999) or mounted at ``/payments``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request, Response

from paycore.payments import metrics, service
from paycore.payments.domain import InvalidPayment, new_payment, parse_bound
from paycore.platform.messaging.bus import Bus
from paycore.platform.persistence.uow import Database
from paycore.platform.web.http import FastHandler, JSONResponse, Problem, body_too_large

PAYMENT_PATH = "/payments"
PURGE_PATHS = ("/purge-payments", "/payments-purge")
MAX_BODY = 4096


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


def payment_taker(bus: Bus) -> FastHandler:
    """``POST /payments``, the hot path: checked, handed to the broker (durable before the
    answer), 202. Served through the API's fast lane and documented as a regular route."""

    async def take(body: bytes) -> tuple[int, Any]:
        if len(body) > MAX_BODY:
            raise body_too_large(MAX_BODY)
        try:
            request = _decoder.decode(body)
            payment = new_payment(request.correlationId, request.exact_amount())
        except msgspec.DecodeError as exc:
            code = "malformed-json" if "malformed" in str(exc).lower() else "validation-error"
            raise Problem(400 if code == "malformed-json" else 422, code, str(exc)) from None
        except InvalidPayment as exc:
            raise Problem(422, "invalid-payment", str(exc), field=exc.field) from None
        await service.accept(bus, payment)
        metrics.payments_accepted.inc()
        return 202, {"correlationId": payment.correlation_id, "status": "accepted"}

    return take


def router(db: Database, take: FastHandler) -> APIRouter:
    api = APIRouter(tags=["payments"])

    @api.post(
        PAYMENT_PATH,
        status_code=202,
        summary="Take a payment (processed asynchronously, exactly once)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PAYMENT_SCHEMA}},
            }
        },
    )
    async def take_payment(request: Request) -> Response:
        status, content = await take(await request.body())
        return JSONResponse(content, status_code=status)

    @api.get("/payments-summary", summary="Payments stored by each processor in a window")
    async def payments_summary(
        start: Annotated[str | None, Query(alias="from", description="ISO 8601, inclusive")] = None,
        end: Annotated[str | None, Query(alias="to", description="ISO 8601, inclusive")] = None,
    ) -> Response:
        try:
            start_ms, end_ms = parse_bound(start, upper=False), parse_bound(end, upper=True)
        except InvalidPayment as exc:
            raise Problem(400, "invalid-window", str(exc), field=exc.field) from None
        async with db.connect() as conn:
            content = await service.summary(conn, start_ms, end_ms)
        return JSONResponse(content)

    async def purge() -> Response:
        await service.purge(db)
        return JSONResponse({"message": "payments purged"})

    for path in PURGE_PATHS:
        api.add_api_route(
            path,
            purge,
            methods=["POST"],
            summary="Delete every payment (test resets)",
            include_in_schema=path == PURGE_PATHS[0],
        )
    return api
