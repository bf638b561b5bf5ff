"""HTTP API of the fulfillment context: look an order up by id (cache first), submit an order
(validated, published to the ``orders`` topic, 202), and a lookup page for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Annotated, Any

import orjson
from fastapi.responses import HTMLResponse
from starlette.datastructures import State
from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.fulfillment.domain import (
    ORDER_UID,
    DuplicateOrderUid,
    InvalidOrder,
    Order,
    order_to_dict,
)
from paycore.fulfillment.messages import SHAPE, decode
from paycore.fulfillment.service import TOPIC, OrderCache, refuse_clash
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.messaging.bus import Bus, Envelope
from paycore.platform.persistence.uow import Database
from paycore.platform.web.bodies import read_document
from paycore.platform.web.fastlane import FastRequest, RawAnswer
from paycore.platform.web.problems import Problem
from paycore.platform.web.routes import Routes, from_state, on_state

PAGE = files("paycore.fulfillment").joinpath("static/lookup.html").read_bytes()
routes = Routes("fulfillment")
_UID = re.compile(ORDER_UID)


@dataclass(frozen=True, slots=True)
class FulfillmentApi:
    """What the routes need, kept on the app's state by ``processes.mount_api``."""

    cache: OrderCache
    bus: Bus
    db: Database


def of(state: State) -> FulfillmentApi:
    return from_state(state, "fulfillment", FulfillmentApi)


Api = Annotated[FulfillmentApi, on_state("fulfillment", FulfillmentApi)]


class Accepted(TypedDict):
    order_uid: str
    message: str


def render(order: Order) -> bytes:
    """The JSON body served for an order."""
    return orjson.dumps(order_to_dict(order))


@routes.fast(
    "GET",
    "/orders",
    by_key="order_uid",
    key_pattern=f"^{ORDER_UID}$",
    response_model=dict[str, Any],
    errors=(NotFound,),
    summary="An order by id (404 when unknown)",
)
async def get_order(request: FastRequest) -> RawAnswer:
    """The hot read: from the cache (the database on a miss), with ``X-Cache: hit|miss``;
    a key that cannot be an order's is refused before the database sees it."""
    cache = of(request.state).cache
    body = cache.get_cached(request.key)
    source = b"hit" if body is not None else b"miss"
    if body is None:
        if not _UID.fullmatch(request.key):
            raise Problem(
                422,
                "validation-error",
                f"order_uid: Expected {ORDER_UID} (1 to 64 letters, digits, '_' or '-')",
                errors=[{"loc": ["path", "order_uid"], "msg": "Bad order uid", "type": "invalid"}],
            )
        body = await cache.get(request.key)
    if body is None:
        raise NotFound(f"order {request.key!r} is unknown")
    return 200, body, ((b"content-type", b"application/json"), (b"x-cache", source))


@routes.fast(
    "POST",
    "/orders",
    status_code=202,
    body=SHAPE,
    response_model=Accepted,
    errors=(InvalidOrder, DuplicateOrderUid),
    summary="Submit an order: validated, then published to the orders topic",
)
async def submit(request: FastRequest) -> tuple[int, Accepted]:
    """Validated as the worker validates it, and refused at once when its ``order_uid`` is
    stored with other content (the worker would dead-letter it); the same order again is
    accepted (stored once)."""
    read_document(request.body, request.headers.get("content-type"))
    order = decode(request.body)
    api = of(request.state)
    async with api.db.connect() as conn:
        await refuse_clash(conn, order)
    await api.bus.publish([Envelope(TOPIC, request.body, id=uuid7(), key=order.order_uid)])
    return 202, {"order_uid": order.order_uid, "message": "Order accepted for processing"}


@routes.get("/", include_in_schema=False)
async def lookup_page() -> HTMLResponse:
    return HTMLResponse(PAGE)
