"""The merchant dashboard: a page (HTML, JS and CSS shipped in the package, nothing from a CDN),
a session cookie from the account secret, and server-sent events of the account's
transactions and counters.

Session: ``POST /dashboard/login`` with the secret sets an httpOnly, ``SameSite=Strict``
cookie (signed, expiring) and answers a CSRF token that state-changing dashboard requests
(logout) send back in ``X-CSRF-Token``; login itself refuses cross-origin requests. The
cookie also authenticates the merchant API's reads (``GET /transactions`` …), never its writes.
A login's secret is checked like the API's (:meth:`Guard.by_secret`), so bad secrets count
against the client's address wherever they are offered.

An account holds at most ``max_streams`` event streams open in one process; the next one is
a 429 until one closes (a tab closed, a stream at the end of its lifetime).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from datetime import datetime
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from paycore.gateway import live
from paycore.gateway.api import (
    SESSION_COOKIE,
    Guard,
    account_stats,
    transaction_view,
    unauthorized,
)
from paycore.gateway.auth import Merchant, Session
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database
from paycore.platform.web.http import JSONResponse, Problem, client_address, dumps
from paycore.platform.web.ratelimit import retry_after

CSRF_HEADER = "x-csrf-token"
STATIC = files("paycore.gateway").joinpath("static")
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATS_EVERY_SECONDS = 1.0
KEEP_ALIVE_SECONDS = 10.0


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str = Field(min_length=1, max_length=200)


class HeldStream(StreamingResponse):
    """An event stream that gives its slot back when it ends, however it ends (its
    lifetime, the client gone, a shutdown)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def router(
    db: Database,
    guard: Guard,
    *,
    cookie_path: str,
    poll_seconds: float,
    stream_seconds: float,
    slots: live.Slots,
) -> APIRouter:
    page = STATIC.joinpath("dashboard.html").read_bytes()
    assets = {name: STATIC.joinpath(name).read_bytes() for name in ASSETS}
    ui = APIRouter(tags=["gateway dashboard"])

    async def session_of(request: Request) -> tuple[Session, Merchant]:
        session = guard.sessions.read(request.cookies.get(SESSION_COOKIE), time.time())
        merchant = await guard.auth.by_id(session.account_id) if session else None
        if session is None or merchant is None:
            raise unauthorized("Log in with the account secret.")
        return session, merchant

    @ui.get("/dashboard", include_in_schema=False)
    async def dashboard_page() -> HTMLResponse:
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    @ui.get("/dashboard/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in assets:
            raise Problem(404, "not-found", f"no asset {name!r}")
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        return Response(assets[name], media_type=ASSETS[name], headers=headers)

    @ui.post("/dashboard/login", summary="Open a dashboard session with the account secret")
    async def login(body: LoginIn, request: Request) -> Response:
        _same_origin(request)
        merchant = await guard.by_secret(body.secret, client_address(request.scope))
        cookie, session = guard.sessions.issue(merchant.id, time.time())
        answer = JSONResponse({"account": _account(merchant), "csrf": session.csrf})
        answer.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=guard.sessions.lifetime,
            path=cookie_path,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return answer

    @ui.post("/dashboard/logout", status_code=204, summary="End the dashboard session")
    async def logout(request: Request) -> Response:
        session, _ = await session_of(request)
        if request.headers.get(CSRF_HEADER) != session.csrf:
            raise Problem(403, "csrf-failed", "The X-CSRF-Token header is missing or wrong.")
        answer = Response(status_code=204)
        answer.delete_cookie(SESSION_COOKIE, path=cookie_path, httponly=True, samesite="strict")
        return answer

    @ui.get("/dashboard/session", summary="The dashboard session: account and CSRF token")
    async def current_session(request: Request) -> Response:
        session, merchant = await session_of(request)
        return JSONResponse({"account": _account(merchant), "csrf": session.csrf})

    @ui.get("/dashboard/events", summary="Server-sent events: transactions and counters")
    async def events(request: Request) -> StreamingResponse:
        _, merchant = await session_of(request)
        start = live.parse_mark(request.headers.get("last-event-id"), utcnow())
        if not slots.take(merchant.id):
            raise Problem(
                429,
                "too-many-streams",
                f"This account already has {slots.limit} dashboard streams open here; "
                "close one (another tab or window) and retry.",
                headers={"Retry-After": retry_after(stream_seconds)},
            )
        return HeldStream(
            _stream(db, merchant.id, start, poll_seconds, stream_seconds),
            lambda: slots.release(merchant.id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return ui


async def _stream(
    db: Database, account_id: str, start: datetime, poll_seconds: float, lifetime: float
) -> AsyncIterator[bytes]:
    """Counters first, then every change, and the counters again (at most once a second)
    after changes; ends after ``lifetime`` seconds (the browser reconnects with the last
    event id, so nothing is missed and no stream outlives a shutdown by long)."""
    yield b"retry: 1000\n\n"
    yield live.event("stats", dumps(await account_stats(db, account_id)))
    clock = time.monotonic
    ends, stats_at, said_at, stale = clock() + lifetime, clock(), clock(), False
    feed = live.changes(db.connect, account_id, start, poll_seconds=poll_seconds)
    try:
        async for rows in feed:
            if rows:
                views = [transaction_view(r) for r in rows]
                yield live.event("transactions", dumps(views), live.mark_of(rows))
                stale, said_at = True, clock()
            last_round = clock() >= ends
            if stale and (clock() - stats_at >= STATS_EVERY_SECONDS or last_round):
                yield live.event("stats", dumps(await account_stats(db, account_id)))
                stale, stats_at, said_at = False, clock(), clock()
            if clock() - said_at >= KEEP_ALIVE_SECONDS:
                yield b": keep-alive\n\n"
                said_at = clock()
            if last_round:
                return
    except live.Resync:
        yield live.event("resync", b"{}")
    finally:
        with suppress(Exception):
            await feed.aclose()


def _account(merchant: Merchant) -> dict[str, str]:
    return {"id": merchant.id, "name": merchant.name}


def _same_origin(request: Request) -> None:
    """Refuse a login posted from another site (login CSRF)."""
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    host = request.headers.get("host", "")
    if fetch_site in ("cross-site", "same-site") or (origin and origin.split("://", 1)[-1] != host):
        raise Problem(403, "cross-origin", "Log in from the dashboard page itself.")
