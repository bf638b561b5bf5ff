"""The fast lane: a few hot routes served as plain ASGI ahead of the framework's routing,
dependency and middleware stack (measured at 4–5x the cost of the handler itself). Each is
declared once (``routes.Routes.fast``), which also mounts it as a documented framework route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.platform.errors import DomainError
from paycore.platform.web.problems import body_too_large, problem_response
from paycore.platform.web.responses import JSONResponse

ROUTE_KEY = "paycore.route"
RawAnswer = tuple[int, bytes, Sequence[tuple[bytes, bytes]]]
"""Status, a body already rendered, and response headers (content type included)."""


class FastRequest:
    """What a hot handler gets: the body, the headers (names in lower case), the client's
    address, the app's state (where a context keeps its dependencies), and for a route by key
    the path's last segment. On the fast lane the headers are decoded only if the handler
    reads them (a read by key seldom does)."""

    __slots__ = ("_headers", "_raw", "body", "client", "key", "state")

    def __init__(
        self,
        body: bytes,
        headers: Mapping[str, str] | None,
        client: str,
        state: State,
        key: str = "",
        *,
        raw_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.body = body
        self.client = client
        self.state = state
        self.key = key
        self._headers = headers
        self._raw = raw_headers

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            self._headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self._raw}
        return self._headers


FastHandler = Callable[[FastRequest], Awaitable[tuple[int, Any]]]
"""A hot handler answering JSON: (status, content); may raise a ``DomainError``."""
RawHandler = Callable[[FastRequest], Awaitable[RawAnswer]]
"""A hot handler answering a body it rendered itself (a cached one)."""


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A hot route: its handler, the path template reported in metrics, the largest body it
    takes, and whether it is a read of one resource named by the path's last segment
    (registered under the path up to it: ``/orders/`` serves ``/orders/<key>``)."""

    handle: Callable[[FastRequest], Awaitable[Any]]  # a FastHandler or a RawHandler
    route: str
    max_body: int = 1 << 20
    by_key: bool = False


def client_address(scope: Scope) -> str:
    """The address of the calling client as the server saw it (uvicorn takes it from
    ``X-Forwarded-For`` only when the connection comes from a proxy listed in
    ``PAYCORE_TRUSTED_PROXIES``); empty if unknown."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def declared_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    """The request's ``Content-Length``, or None if it has none (or not a number)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class FastLane:
    """Serves the hot ``(method, path)`` pairs in ``routes`` (filled at startup) before the
    framework; everything else passes through."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], FastRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        route, key = self.routes.get((method, path)), ""
        if route is None or route.by_key:  # a read by key needs a key after its path
            head, _, key = path.rpartition("/")
            route = self.routes.get((method, head + "/")) if key else None
            if route is None or not route.by_key:
                await self.app(scope, receive, send)
                return
        scope[ROUTE_KEY] = route.route
        try:
            body = b""
            if method != "GET":
                declared = declared_length(scope["headers"])
                if declared is not None and declared > route.max_body:
                    raise body_too_large(route.max_body)
                body = await read_body(receive, limit=route.max_body)
            request = FastRequest(
                body,
                None,
                client_address(scope),
                scope["app"].state,
                key,
                raw_headers=scope["headers"],
            )
            if route.by_key:
                await send_raw(send, *await route.handle(request))
                return
            status, content = await route.handle(request)
        except DomainError as error:
            await problem_response(error)(scope, receive, send)
            return
        await JSONResponse(content, status_code=status)(scope, receive, send)


async def send_raw(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The whole request body of an ASGI request; a 413 ``Problem`` past ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, original: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read) as the whole request body,
    then passes through (disconnect notices)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
