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
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from msgspec import Meta
from starlette.types import Receive, Scope, Send
from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.gateway import live
from paycore.gateway.api import MERCHANT_ERRORS, SESSION_COOKIE, Api, GatewayApi
from paycore.gateway.auth import SESSION, Merchant, Session
from paycore.gateway.domain import CrossOrigin, CsrfFailed, NotFound, TooManyStreams, Unauthorized
from paycore.gateway.views import account_stats, transaction_view
from paycore.platform.clock import utcnow
from paycore.platform.web.bodies import Input
from paycore.platform.web.fastlane import client_address
from paycore.platform.web.ratelimit import retry_after
from paycore.platform.web.responses import JSONResponse, dumps
from paycore.platform.web.routes import Routes

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
PAGE = STATIC.joinpath("dashboard.html").read_bytes()
ASSET_BYTES = {name: STATIC.joinpath(name).read_bytes() for name in ASSETS}
STATS_EVERY_SECONDS = 1.0
KEEP_ALIVE_SECONDS = 10.0


class LoginIn(Input):
    secret: Annotated[str, Meta(min_length=1, max_length=200)]


EVENT: dict[str, Any] = {
    "description": "An event: the counters (stats), changed transactions (transactions, with"
    " the id to resume from), or resync (reload: changes were missed)",
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["stats", "transactions", "resync"]},
        "data": {"type": "string", "description": "JSON"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


class HeldStream(StreamingResponse):
    """An event stream that gives its slot back when it ends, however it ends (its
    lifetime, the client gone, a shutdown)."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kw: Any):
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


routes = Routes("gateway dashboard")


class AccountRef(TypedDict):
    id: str
    name: str


class SessionOut(TypedDict):
    account: AccountRef
    csrf: str


async def _session_of(request: Request, api: GatewayApi) -> tuple[Session, Merchant]:
    session = api.guard.sessions.read(request.cookies.get(SESSION_COOKIE), time.time())
    merchant = await api.guard.auth.by_id(session.account_id) if session else None
    if session is None or merchant is None:
        raise Unauthorized("Log in with the account secret.")
    return session, merchant


@routes.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=SECURITY_HEADERS)


@routes.get("/dashboard/static/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    if name not in ASSET_BYTES:
        raise NotFound(f"no asset {name!r}")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(ASSET_BYTES[name], media_type=ASSETS[name], headers=headers)


@routes.post(
    "/dashboard/login",
    errors=(*MERCHANT_ERRORS, CrossOrigin),
    summary="Open a dashboard session with the account secret",
)
async def login(body: LoginIn, request: Request, api: Api) -> Response:
    _same_origin(request)
    merchant = await api.guard.by_secret(body.secret, client_address(request.scope))
    cookie, session = api.guard.sessions.issue(merchant.id, time.time())
    content: SessionOut = {"account": _account(merchant), "csrf": session.csrf}
    answer = JSONResponse(content)
    answer.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=api.guard.sessions.lifetime,
        path=api.cookie_path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@routes.post(
    "/dashboard/logout",
    status_code=204,
    errors=(Unauthorized, CsrfFailed),
    security=(SESSION,),
    summary="End the dashboard session",
)
async def logout(request: Request, api: Api) -> Response:
    session, _ = await _session_of(request, api)
    if request.headers.get(CSRF_HEADER) != session.csrf:
        raise CsrfFailed("The X-CSRF-Token header is missing or wrong.")
    answer = Response(status_code=204)
    answer.delete_cookie(SESSION_COOKIE, path=api.cookie_path, httponly=True, samesite="strict")
    return answer


@routes.get(
    "/dashboard/session",
    errors=(Unauthorized,),
    security=(SESSION,),
    summary="The dashboard session: account and CSRF token",
)
async def current_session(request: Request, api: Api) -> SessionOut:
    session, merchant = await _session_of(request, api)
    return {"account": _account(merchant), "csrf": session.csrf}


@routes.get(
    "/dashboard/events",
    errors=(Unauthorized, TooManyStreams),
    security=(SESSION,),
    summary="Server-sent events: transactions and counters",
    response_class=HeldStream,
    responses={
        200: {
            "description": "The account's events",
            "content": {HeldStream.media_type: {"schema": EVENT}},
        }
    },
)
async def events(request: Request, api: Api) -> StreamingResponse:
    _, merchant = await _session_of(request, api)
    start = live.parse_mark(request.headers.get("last-event-id"), utcnow())
    if not api.slots.take(merchant.id):
        raise TooManyStreams(
            f"This account already has {api.slots.limit} dashboard streams open here; "
            "close one (another tab or window) and retry.",
            retry_after(api.stream_seconds),
        )
    slots = api.slots
    return HeldStream(
        _stream(api, merchant.id, start),
        lambda: slots.release(merchant.id),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(api: GatewayApi, account_id: str, start: datetime) -> AsyncIterator[bytes]:
    """Counters first, then every change, and the counters again (at most once a second)
    after changes; ends after ``lifetime`` seconds (the browser reconnects with the last
    event id, so nothing is missed and no stream outlives a shutdown by long)."""
    db = api.db
    yield b"retry: 1000\n\n"
    yield live.event("stats", dumps(await account_stats(db, account_id)))
    clock = time.monotonic
    ends, stats_at, said_at, stale = clock() + api.stream_seconds, clock(), clock(), False
    feed = live.changes(db.connect, account_id, start, poll_seconds=api.poll_seconds)
    try:
        async for rows in feed:
            if rows:
                views = [transaction_view(r, api.keyring) for r in rows]
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


def _account(merchant: Merchant) -> AccountRef:
    return {"id": merchant.id, "name": merchant.name}


def _same_origin(request: Request) -> None:
    """Refuse a login posted from another site (login CSRF)."""
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    host = request.headers.get("host", "")
    if fetch_site in ("cross-site", "same-site") or (origin and origin.split("://", 1)[-1] != host):
        raise CrossOrigin("Log in from the dashboard page itself.")
