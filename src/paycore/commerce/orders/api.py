"""Public HTTP API of the commerce context (mounted at ``/commerce``), with the seed's
``/create/*`` paths as aliases; the order queries are proxied to the analytics service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from email_validator import EmailNotValidError, validate_email
from fastapi import Query, Response
from msgspec import Meta
from starlette.datastructures import State
from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.commerce.domain import (
    Conflict,
    Customer,
    EmptyOrder,
    InvalidEmail,
    InvalidQuantity,
    InvalidValue,
    NotFound,
    Order,
    Product,
    UnknownProducts,
)
from paycore.commerce.orders import metrics, service, store
from paycore.commerce.orders.client import AnalyticsClient, AnalyticsUnavailable
from paycore.commerce.params import ArchiveFile, Month
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.batch import GroupWriter
from paycore.platform.persistence.uow import Database
from paycore.platform.web.bodies import Cents, Input, read, text
from paycore.platform.web.fastlane import FastRequest
from paycore.platform.web.params import IntId, Page
from paycore.platform.web.responses import Money
from paycore.platform.web.routes import Routes, from_state, on_state

routes = Routes("commerce")


@dataclass(frozen=True, slots=True)
class OrdersApi:
    """What the routes need, kept on the app's state by ``processes.mount_api``."""

    db: Database
    catalog: store.Catalog
    orders: GroupWriter[service.PendingOrder, Order]
    analytics: AnalyticsClient


def of(state: State) -> OrdersApi:
    return from_state(state, "commerce", OrdersApi)


Api = Annotated[OrdersApi, on_state("commerce", OrdersApi)]


Email = Annotated[
    str,
    Meta(
        min_length=3, max_length=254, pattern=r"^[^@\x00-\x20\x7f-\x9f]+@[^@\x00-\x20\x7f-\x9f]+$"
    ),
]


class CustomerIn(Input):
    email: Annotated[
        Email,
        Meta(description="Checked in full (domain and all)", extra_json_schema={"format": "email"}),
    ]
    username: Annotated[str, text(100)]


class ProductIn(Input):
    name: Annotated[str, text(200)]
    value: Annotated[Cents, Meta(description="Unit price, e.g. 31.50")]


class OrderItemIn(Input):
    name: Annotated[str, text(200)]
    quantity: Annotated[int, Meta(gt=0, le=1_000_000)]


class OrderIn(Input):
    # Only identifies the customer (checked in full when the customer was created): a cheap
    # shape check instead of full e-mail validation on this hot path.
    email: Email
    products: Annotated[list[OrderItemIn], Meta(min_length=1, max_length=1000)]


class CustomerOut(TypedDict):
    id: int
    email: str
    username: str
    createdAt: str


class ProductOut(TypedDict):
    id: int
    name: str
    value: Money


class OrderLineOut(TypedDict):
    name: str
    quantity: int
    unitValue: Money
    lineTotal: Money


class OrderOut(TypedDict):
    id: int
    customerId: int
    items: list[OrderLineOut]
    total: Money
    createdAt: str


def _customer(customer: Customer) -> CustomerOut:
    return {
        "id": customer.id,
        "email": customer.email,
        "username": customer.username,
        "createdAt": iso(customer.created_at),
    }


def _product(product: Product) -> ProductOut:
    return {"id": product.id, "name": product.name, "value": from_cents(product.value_cents)}


def _order(order: Order) -> OrderOut:
    return {
        "id": order.order_id,
        "customerId": order.customer_id,
        "items": [
            {
                "name": line.product,
                "quantity": line.quantity,
                "unitValue": from_cents(line.unit_cents),
                "lineTotal": from_cents(line.total_cents),
            }
            for line in order.lines
        ],
        "total": from_cents(order.total_cents),
        "createdAt": iso(order.ordered_at),
    }


# --- customers and products ------------------------------------------------------------------


@routes.post(
    "/customers",
    aliases=("/create/customer",),
    status_code=201,
    errors=(Conflict, InvalidEmail),
    summary="Create a customer",
)
async def create_customer(body: CustomerIn, api: Api) -> CustomerOut:
    try:
        email = validate_email(body.email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    async with api.db.transaction() as tx:
        customer = await service.create_customer(tx, email=email, username=body.username)
    return _customer(customer)


@routes.get("/customers/{customer_id}", errors=(NotFound,), summary="Get a customer")
async def get_customer(customer_id: IntId, api: Api) -> CustomerOut:
    async with api.db.connect() as conn:
        customer = await store.find_customer(conn, id=customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} is unknown")
    return _customer(customer)


@routes.post(
    "/products",
    aliases=("/create/product",),
    status_code=201,
    errors=(Conflict, InvalidValue),
    summary="Create a product",
)
async def create_product(body: ProductIn, api: Api) -> ProductOut:
    async with api.db.transaction() as tx:
        product = await service.create_product(tx, name=body.name, value_cents=body.value)
    return _product(product)


@routes.get("/products", summary="List products")
async def list_products(
    api: Api,
    page: Page = 0,
    pageSize: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ProductOut]:
    async with api.db.connect() as conn:
        found = await store.list_products(conn, offset=page * pageSize, limit=pageSize)
    return [_product(p) for p in found]


# --- orders ----------------------------------------------------------------------------------


@routes.fast(
    "POST",
    "/orders",
    aliases=("/create/order",),
    status_code=201,
    body=OrderIn,
    response_model=OrderOut,
    errors=(NotFound, UnknownProducts, InvalidQuantity, EmptyOrder),
    summary="Place an order",
)
async def place_order(request: FastRequest) -> tuple[int, OrderOut]:
    """The hot path: the body validated by pydantic-core directly, the customer and prices
    from the catalog cache, the order and its event written by group commit (ADR 0002)."""
    api = of(request.state)
    order_in = read(OrderIn, request.body, request.headers.get("content-type"))
    items = [(p.name, p.quantity) for p in order_in.products]
    pending = await service.prepare_order(api.catalog, email=order_in.email, items=items)
    order = await api.orders.submit(pending)
    metrics.orders_placed.inc()
    metrics.order_value.inc(order.total_cents)
    return 201, _order(order)


@routes.get("/orders/{order_id}", errors=(NotFound,), summary="Get an order as placed")
async def get_order(order_id: IntId, api: Api) -> OrderOut:
    async with api.db.connect() as conn:
        order = await store.load_order(conn, order_id)
    if order is None:
        raise NotFound(f"order {order_id} is unknown")
    return _order(order)


# --- the analytics service's answers, proxied ------------------------------------------------


async def _proxy(
    api: OrdersApi, *segments: str | int, params: dict[str, Any] | None = None
) -> Response:
    answer = await api.analytics.get(*segments, params=params)
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


UNAVAILABLE = (AnalyticsUnavailable,)


@routes.get(
    "/orders/{order_id}/total",
    errors=(NotFound, *UNAVAILABLE),
    summary="Total value of an order (analytics)",
)
async def order_total(order_id: IntId, api: Api) -> Response:
    return await _proxy(api, "orders", order_id, "total")


@routes.get(
    "/customers/{customer_id}/orders/count",
    errors=(NotFound, *UNAVAILABLE),
    summary="Number of orders of a customer (404 for a customer nobody knows)",
)
async def order_count(customer_id: IntId, api: Api) -> Response:
    answer = await _proxy(api, "customers", customer_id, "orders", "count")
    return await _known_customer(api, customer_id, answer, lambda found: found["orders"])


@routes.get(
    "/customers/{customer_id}/orders",
    errors=(NotFound, *UNAVAILABLE),
    summary="Orders of a customer, paginated (404 for a customer nobody knows)",
)
async def customer_orders(
    customer_id: IntId,
    api: Api,
    page: Page = 0,
    pageSize: Annotated[int, Query(ge=1, le=500)] = 10,
) -> Response:
    params = {"page": page, "pageSize": pageSize}
    answer = await _proxy(api, "customers", customer_id, "orders", params=params)
    return await _known_customer(
        api, customer_id, answer, lambda found: found["pagination"]["totalElements"]
    )


async def _known_customer(
    api: OrdersApi, customer_id: int, answer: Response, orders: Callable[[Any], int]
) -> Response:
    """The analytics service's answer about a customer's orders, unless it found none and the
    customer is not ours either: the analytics service knows customers only by their orders
    (those of the challenge's own messages included), this service knows those it created."""
    if answer.status_code != 200 or orders(orjson.loads(answer.body)) > 0:
        return answer
    async with api.db.connect() as conn:
        if await store.find_customer(conn, id=customer_id) is None:
            raise NotFound(f"customer {customer_id} is unknown")
    return answer


@routes.get(
    "/analytics",
    errors=UNAVAILABLE,
    summary="Rankings: products, customers, expensive and recent orders",
)
async def rankings(api: Api, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    return await _proxy(api, "analytics", params={"limit": limit})


@routes.get("/archive", errors=UNAVAILABLE, summary="Months held in the archive")
async def archive_months(api: Api) -> Response:
    return await _proxy(api, "archive")


@routes.get(
    "/archive/{month}", errors=(NotFound, *UNAVAILABLE), summary="Files of one archived month"
)
async def archive_month(month: Month, api: Api) -> Response:
    return await _proxy(api, "archive", month)


@routes.get(
    "/archive/{month}/{name}",
    errors=(NotFound, *UNAVAILABLE),
    summary="Download an archived file",
)
async def archive_file(month: Month, name: ArchiveFile, api: Api) -> Response:
    return await _proxy(api, "archive", month, name)
