"""HTTP API of the fulfillment context: look an order up by id (cache first), submit an order
(validated, published to the ``orders`` topic, 202), and a lookup page for people."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from paycore.fulfillment.domain import InvalidOrder, Order, order_to_dict
from paycore.fulfillment.service import TOPIC, OrderCache, decode
from paycore.platform.ids import uuid7
from paycore.platform.messaging.bus import Bus, Envelope
from paycore.platform.web.http import ByKey, JSONResponse, Problem, RawAnswer

ORDER_SCHEMA: dict[str, Any] = {
    "description": "An order in the L0 model (see the README for every field and rule).",
    "type": "object",
}
ORDER_ROUTE = "/orders/{order_uid}"
PAGE = files("paycore.fulfillment").joinpath("static/lookup.html").read_bytes()


def render(order: Order) -> bytes:
    """The JSON body served for an order."""
    return orjson.dumps(order_to_dict(order))


def order_lookup(cache: OrderCache) -> ByKey:
    """``GET /orders/{order_uid}``, the hot read: served by the API's fast lane from the cache
    (the database on a miss), with ``X-Cache: hit|miss``; documented as a regular route."""

    async def lookup(order_uid: str) -> RawAnswer:
        body = cache.get_cached(order_uid)
        source = b"hit" if body is not None else b"miss"
        if body is None:
            body = await cache.get(order_uid)
        if body is None:
            raise Problem(404, "not-found", f"order {order_uid!r} is unknown")
        return 200, body, ((b"content-type", b"application/json"), (b"x-cache", source))

    return ByKey(lookup, ORDER_ROUTE)


def router(lookup: ByKey, bus: Bus) -> APIRouter:
    api = APIRouter(tags=["fulfillment"])

    @api.get(ORDER_ROUTE, summary="An order by id (404 when unknown)")
    async def get_order(order_uid: str) -> Response:
        status, body, headers = await lookup.handle(order_uid)
        return Response(
            body, status_code=status, headers={k.decode(): v.decode() for k, v in headers}
        )

    @api.post(
        "/orders",
        status_code=202,
        summary="Submit an order: validated, then published to the orders topic",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ORDER_SCHEMA}},
            }
        },
    )
    async def submit(request: Request) -> Response:
        body = await request.body()
        try:
            order = decode(body)
        except InvalidOrder as exc:
            status = 400 if exc.kind == "not-json" else 422
            raise Problem(
                status, "invalid-order", str(exc), kind=exc.kind, field=exc.field
            ) from exc
        await bus.publish([Envelope(TOPIC, body, id=uuid7(), key=order.order_uid)])
        return JSONResponse(
            {"order_uid": order.order_uid, "message": "Order accepted for processing"},
            status_code=202,
        )

    @api.get("/", include_in_schema=False)
    async def lookup_page() -> HTMLResponse:
        return HTMLResponse(PAGE)

    return api
