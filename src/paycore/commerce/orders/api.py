"""Public HTTP API of the commerce context (mounted at ``/commerce``), with the seed's
``/create/*`` paths as aliases; the order queries are proxied to the analytics service."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from paycore.commerce.domain import CommerceError, Order
from paycore.commerce.orders import service, store
from paycore.commerce.orders.client import AnalyticsClient, AnalyticsUnavailable
from paycore.platform.clock import iso
from paycore.platform.money import from_cents, to_cents
from paycore.platform.persistence.batch import GroupWriter
from paycore.platform.persistence.uow import Database
from paycore.platform.web.http import FastHandler, JSONResponse, Problem, parse_body

orders_placed = Counter("paycore_commerce_orders_placed_total", "Orders placed (committed)")
order_value = Counter("paycore_commerce_order_value_cents_total", "Value of orders placed, cents")

STATUS = {
    "conflict": 409,
    "not-found": 404,
    "unknown-product": 422,
    "invalid-quantity": 422,
    "empty-order": 422,
    "invalid-value": 422,
}


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: EmailStr
    username: str = Field(min_length=1, max_length=100)


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    value: Decimal = Field(
        gt=0, max_digits=15, decimal_places=2, description="Unit price, e.g. 31.50"
    )


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(gt=0, le=1_000_000, strict=True)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # Only identifies the customer (validated when the customer was created): a cheap shape
    # check instead of full e-mail validation on this hot path.
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    products: list[OrderItemIn] = Field(min_length=1, max_length=1000)


class CustomerOut(BaseModel):
    id: int
    email: str
    username: str
    createdAt: str


class ProductOut(BaseModel):
    id: int
    name: str
    value: Decimal


class OrderLineOut(BaseModel):
    name: str
    quantity: int
    unitValue: Decimal
    lineTotal: Decimal


class OrderOut(BaseModel):
    id: int
    customerId: int
    items: list[OrderLineOut]
    total: Decimal
    createdAt: str


def _customer(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "username": row["username"],
        "createdAt": iso(row["created_at"]),
    }


def _product(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "value": from_cents(row["value_cents"])}


def _order(order: Order) -> dict[str, Any]:
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


def _problem(exc: CommerceError) -> Problem:
    return Problem(STATUS.get(exc.code, 422), exc.code, str(exc))


def order_placer(db: Database, orders: GroupWriter[service.PendingOrder, Order]) -> FastHandler:
    """``POST /orders``, the hot path: the body is validated by pydantic-core directly, the
    customer and prices come from the catalog cache, and ``orders`` writes the order and its
    event with group commit (ADR 0002). Served through the API's fast lane and documented as
    a regular route."""
    catalog = store.Catalog(db.connect)

    async def place(body: bytes) -> tuple[int, Any]:
        request = parse_body(OrderIn, body)
        items = [(p.name, p.quantity) for p in request.products]
        try:
            pending = await service.prepare_order(catalog, email=request.email, items=items)
        except CommerceError as exc:
            raise _problem(exc) from exc
        order = await orders.submit(pending)
        orders_placed.inc()
        order_value.inc(order.total_cents)
        return 201, _order(order)

    return place


ORDER_PATHS = ("/orders", "/create/order")


def router(db: Database, place: FastHandler, analytics: AnalyticsClient) -> APIRouter:
    """The public routes; ``place`` is the order placer (also served by the fast lane)."""
    api = APIRouter(tags=["commerce"])

    @api.post(
        "/customers", status_code=201, response_model=CustomerOut, summary="Create a customer"
    )
    @api.post(
        "/create/customer", status_code=201, response_model=CustomerOut, include_in_schema=False
    )
    async def create_customer(body: CustomerIn) -> Response:
        try:
            async with db.transaction() as tx:
                row = await service.create_customer(tx, email=body.email, username=body.username)
        except CommerceError as exc:
            raise _problem(exc) from exc
        return JSONResponse(_customer(row), status_code=201)

    @api.get("/customers/{customer_id}", response_model=CustomerOut, summary="Get a customer")
    async def get_customer(customer_id: int) -> Response:
        async with db.connect() as conn:
            row = await store.find_customer(conn, id=customer_id)
        if row is None:
            raise Problem(404, "not-found", f"customer {customer_id} is unknown")
        return JSONResponse(_customer(dict(row._mapping)))

    @api.post("/products", status_code=201, response_model=ProductOut, summary="Create a product")
    @api.post(
        "/create/product", status_code=201, response_model=ProductOut, include_in_schema=False
    )
    async def create_product(body: ProductIn) -> Response:
        try:
            async with db.transaction() as tx:
                row = await service.create_product(
                    tx, name=body.name, value_cents=to_cents(body.value)
                )
        except CommerceError as exc:
            raise _problem(exc) from exc
        return JSONResponse(_product(row), status_code=201)

    @api.get("/products", response_model=list[ProductOut], summary="List products")
    async def list_products(
        page: Annotated[int, Query(ge=0)] = 0, pageSize: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> Response:
        async with db.connect() as conn:
            rows = await store.list_products(conn, offset=page * pageSize, limit=pageSize)
        return JSONResponse([_product(r._mapping) for r in rows])

    order_body = {
        "required": True,
        "content": {"application/json": {"schema": OrderIn.model_json_schema()}},
    }

    @api.post(
        "/orders",
        status_code=201,
        response_model=OrderOut,
        summary="Place an order",
        openapi_extra={"requestBody": order_body},
    )
    @api.post("/create/order", status_code=201, response_model=OrderOut, include_in_schema=False)
    async def create_order(request: Request) -> Response:
        status, content = await place(await request.body())
        return JSONResponse(content, status_code=status)

    @api.get("/orders/{order_id}", response_model=OrderOut, summary="Get an order as placed")
    async def get_order(order_id: int) -> Response:
        async with db.connect() as conn:
            order = await store.load_order(conn, order_id)
        if order is None:
            raise Problem(404, "not-found", f"order {order_id} is unknown")
        return JSONResponse(_order(order))

    async def proxy(path: str, params: dict[str, Any] | None = None) -> Response:
        try:
            answer = await analytics.get(path, params)
        except AnalyticsUnavailable as exc:
            raise Problem(
                503,
                "analytics-unavailable",
                f"the analytics service did not answer: {exc}",
                headers={"Retry-After": "1"},
            ) from exc
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    @api.get("/orders/{order_id}/total", summary="Total value of an order (analytics)")
    async def order_total(order_id: int) -> Response:
        return await proxy(f"/orders/{order_id}/total")

    @api.get("/customers/{customer_id}/orders/count", summary="Number of orders of a customer")
    async def order_count(customer_id: int) -> Response:
        return await proxy(f"/customers/{customer_id}/orders/count")

    @api.get("/customers/{customer_id}/orders", summary="Orders of a customer, paginated")
    async def customer_orders(
        customer_id: int,
        page: Annotated[int, Query(ge=0)] = 0,
        pageSize: Annotated[int, Query(ge=1, le=500)] = 10,
    ) -> Response:
        return await proxy(f"/customers/{customer_id}/orders", {"page": page, "pageSize": pageSize})

    @api.get("/analytics", summary="Rankings: products, customers, expensive and recent orders")
    async def rankings(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
        return await proxy("/analytics", {"limit": limit})

    @api.get("/archive", summary="Months held in the archive")
    async def archive_months() -> Response:
        return await proxy("/archive")

    @api.get("/archive/{month}", summary="Files of one archived month")
    async def archive_month(month: str) -> Response:
        return await proxy(f"/archive/{month}")

    @api.get("/archive/{month}/{name}", summary="Download an archived file")
    async def archive_file(month: str, name: str) -> Response:
        return await proxy(f"/archive/{month}/{name}")

    return api
