"""HTTP API of the internal analytics ("orders") service: the challenge's three queries,
rankings and the monthly archive. Requires the service credential; refuses browser origins."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send
from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.commerce.analytics import service
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import Board
from paycore.commerce.domain import NotFound
from paycore.commerce.params import ArchiveFile, Month
from paycore.platform import errors
from paycore.platform.errors import DomainError
from paycore.platform.money import from_cents
from paycore.platform.persistence.uow import Database
from paycore.platform.web.credentials import SERVICE_TOKEN
from paycore.platform.web.params import IntId, Page
from paycore.platform.web.problems import problem_response
from paycore.platform.web.responses import Money
from paycore.platform.web.routes import Routes, from_state


class Unauthorized(errors.Unauthorized):
    """The service credential is missing or wrong."""

    needed = "A valid service credential is required."


class CrossOriginForbidden(DomainError):
    """An internal service refuses browser origins."""

    code = "cross-origin-forbidden"
    status = 403


class RefuseBrowserOrigins:
    """CORS policy of an internal service: any request carrying an ``Origin`` header (which
    browsers add to cross-origin calls and preflights) is refused, with no CORS headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(k == b"origin" for k, _ in scope.get("headers", [])):
            refused = CrossOriginForbidden("This internal service refuses browser origins.")
            await problem_response(refused)(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass(frozen=True, slots=True)
class AnalyticsApi:
    """What the routes need, kept on the app's state by ``processes.start_worker``."""

    db: Database
    board: Board
    archive: Archive
    token: str


def of(state: State) -> AnalyticsApi:
    return from_state(state, "analytics", AnalyticsApi)


async def _api(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> AnalyticsApi:
    """The service's dependencies, once the caller showed the service credential."""
    api = of(request.app.state)
    scheme, _, presented = (authorization or "").partition(" ")
    valid = scheme.lower() == "bearer" and presented.strip()
    if not valid or not hmac.compare_digest(presented.strip().encode(), api.token.encode()):
        raise Unauthorized()
    return api


Api = Annotated[AnalyticsApi, Depends(_api)]
routes = Routes("analytics", security=(SERVICE_TOKEN,))
ALWAYS = (Unauthorized, CrossOriginForbidden)


class OrderTotal(TypedDict):
    orderId: int
    total: Money


class OrderCount(TypedDict):
    customerId: int
    orders: int


class Summary(TypedDict):
    totalOnOrders: Money


class OrderRow(TypedDict):
    orderId: int
    customerId: int
    total: Money


class Pagination(TypedDict):
    page: int
    pageSize: int
    totalElements: int
    totalPages: int


class CustomerOrders(TypedDict):
    summary: Summary
    data: list[OrderRow]
    pagination: Pagination


class Ranked(TypedDict):
    key: str
    value: Money | int


class Months(TypedDict):
    months: list[str]


class ArchivedFile(TypedDict):
    name: str
    size: int


class MonthFiles(TypedDict):
    month: str
    files: list[ArchivedFile]


MONEY_RANKINGS = {"productsByValue", "customersBySpend", "mostExpensiveOrders"}


@routes.get("/orders/{order_id}/total", errors=(*ALWAYS, NotFound), summary="Total of an order")
async def order_total(order_id: IntId, api: Api) -> OrderTotal:
    async with api.db.connect() as conn:
        total = await service.order_total(conn, order_id)
    return {"orderId": order_id, "total": from_cents(total)}


@routes.get(
    "/customers/{customer_id}/orders/count",
    errors=ALWAYS,
    summary="Number of orders of a customer",
)
async def order_count(customer_id: IntId, api: Api) -> OrderCount:
    async with api.db.connect() as conn:
        count = await service.order_count(conn, customer_id)
    return {"customerId": customer_id, "orders": count}


@routes.get(
    "/customers/{customer_id}/orders", errors=ALWAYS, summary="Orders of a customer, paginated"
)
async def customer_orders(
    customer_id: IntId,
    api: Api,
    page: Page = 0,
    pageSize: Annotated[int, Query(ge=1, le=500)] = 10,
) -> CustomerOrders:
    async with api.db.connect() as conn:
        found = await service.orders_of_customer(conn, customer_id, page=page, page_size=pageSize)
    return {
        "summary": {"totalOnOrders": from_cents(found.total_on_orders_cents)},
        "data": [
            {"orderId": r.order_id, "customerId": r.customer_id, "total": from_cents(r.total_cents)}
            for r in found.rows
        ],
        "pagination": {
            "page": found.page,
            "pageSize": found.page_size,
            "totalElements": found.total_elements,
            "totalPages": found.total_pages,
        },
    }


@routes.get("/analytics", errors=ALWAYS, summary="Rankings (highest first)")
async def rankings(
    api: Api, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> dict[str, list[Ranked]]:
    snapshot = await api.board.snapshot(limit)
    return {
        name: [
            {"key": e.member, "value": from_cents(e.score) if name in MONEY_RANKINGS else e.score}
            for e in entries
        ]
        for name, entries in snapshot.items()
    }


@routes.get("/archive", errors=ALWAYS, summary="Archived months")
async def months(api: Api) -> Months:
    return {"months": api.archive.months()}


@routes.get("/archive/{month}", errors=(*ALWAYS, NotFound), summary="Files of an archived month")
async def files(month: Month, api: Api) -> MonthFiles:
    found = api.archive.files(month)
    if not found:
        raise NotFound(f"nothing archived for {month!r}")
    return {"month": month, "files": [{"name": f.name, "size": f.size} for f in found]}


@routes.get(
    "/archive/{month}/{name}", errors=(*ALWAYS, NotFound), summary="Download an archived file"
)
async def download(month: Month, name: ArchiveFile, api: Api) -> StreamingResponse:
    chunks = api.archive.read(month, name)
    if chunks is None:
        raise NotFound(f"no archived file {month}/{name}")
    media = "application/json" if name.endswith(".json") else "application/gzip"
    return StreamingResponse(
        chunks,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{month}-{name}"'},
    )
