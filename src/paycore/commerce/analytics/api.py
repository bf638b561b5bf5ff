"""HTTP API of the internal analytics ("orders") service: the challenge's three queries,
rankings and the monthly archive. Requires the service credential; refuses browser origins."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from paycore.commerce.analytics import service
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import Board
from paycore.commerce.domain import CommerceError
from paycore.platform.money import from_cents
from paycore.platform.persistence.uow import Database
from paycore.platform.web.http import JSONResponse, Problem, problem_response


class RefuseBrowserOrigins:
    """CORS policy of an internal service: any request carrying an ``Origin`` header (which
    browsers add to cross-origin calls and preflights) is refused, with no CORS headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(k == b"origin" for k, _ in scope.get("headers", [])):
            problem = Problem(
                403, "cross-origin-forbidden", "This internal service refuses browser origins."
            )
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def service_auth(token: str) -> Any:
    async def check(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, presented = (authorization or "").partition(" ")
        valid = scheme.lower() == "bearer" and presented.strip()
        if not valid or not hmac.compare_digest(presented.strip().encode(), token.encode()):
            raise Problem(
                401,
                "unauthorized",
                "A valid service credential is required.",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return Depends(check)


def router(db: Database, board: Board, archive: Archive, token: str) -> APIRouter:
    api = APIRouter(dependencies=[service_auth(token)], tags=["analytics"])

    @api.get("/orders/{order_id}/total", summary="Total value of an order")
    async def order_total(order_id: int) -> JSONResponse:
        try:
            async with db.connect() as conn:
                total = await service.order_total(conn, order_id)
        except CommerceError as exc:
            raise Problem(404, exc.code, str(exc)) from exc
        return JSONResponse({"orderId": order_id, "total": from_cents(total)})

    @api.get("/customers/{customer_id}/orders/count", summary="Number of orders of a customer")
    async def order_count(customer_id: int) -> JSONResponse:
        async with db.connect() as conn:
            count = await service.order_count(conn, customer_id)
        return JSONResponse({"customerId": customer_id, "orders": count})

    @api.get("/customers/{customer_id}/orders", summary="Orders of a customer, paginated")
    async def customer_orders(
        customer_id: int,
        page: Annotated[int, Query(ge=0)] = 0,
        pageSize: Annotated[int, Query(ge=1, le=500)] = 10,
    ) -> JSONResponse:
        async with db.connect() as conn:
            found = await service.orders_of_customer(
                conn, customer_id, page=page, page_size=pageSize
            )
        return JSONResponse(
            {
                "summary": {"totalOnOrders": from_cents(found.total_on_orders_cents)},
                "data": [
                    {
                        "orderId": r.order_id,
                        "customerId": r.customer_id,
                        "total": from_cents(r.total_cents),
                    }
                    for r in found.rows
                ],
                "pagination": {
                    "page": found.page,
                    "pageSize": found.page_size,
                    "totalElements": found.total_elements,
                    "totalPages": found.total_pages,
                },
            }
        )

    @api.get("/analytics", summary="Rankings (highest first)")
    async def rankings(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> JSONResponse:
        snapshot = await board.snapshot(limit)
        money = {"productsByValue", "customersBySpend", "mostExpensiveOrders"}
        return JSONResponse(
            {
                name: [
                    {"key": e.member, "value": from_cents(e.score) if name in money else e.score}
                    for e in entries
                ]
                for name, entries in snapshot.items()
            }
        )

    @api.get("/archive", summary="Archived months")
    async def months() -> JSONResponse:
        return JSONResponse({"months": archive.months()})

    @api.get("/archive/{month}", summary="Files of an archived month")
    async def files(month: str) -> JSONResponse:
        found = archive.files(month)
        if not found:
            raise Problem(404, "not-found", f"nothing archived for {month!r}")
        return JSONResponse(
            {"month": month, "files": [{"name": f.name, "size": f.size} for f in found]}
        )

    @api.get("/archive/{month}/{name}", summary="Download an archived file")
    async def download(month: str, name: str) -> StreamingResponse:
        chunks = archive.read(month, name)
        if chunks is None:
            raise Problem(404, "not-found", f"no archived file {month}/{name}")
        media = "application/json" if name.endswith(".json") else "application/gzip"
        return StreamingResponse(
            chunks,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{month}-{name}"'},
        )

    return api
