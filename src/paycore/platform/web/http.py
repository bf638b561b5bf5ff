"""HTTP kernel: JSON responses with exact money, RFC 9457 problem details with stable codes,
correlation ids, request metrics, health/readiness/metrics routes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.platform.ids import uuid7
from paycore.platform.observability import metrics
from paycore.platform.observability.logging import correlation_id

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

PROBLEM_TYPE_BASE = "https://paycore.dev/problems/"
CORRELATION_HEADER = "x-correlation-id"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(content: Any) -> bytes:
    """orjson with Decimals written as exact JSON numbers."""
    return orjson.dumps(content, default=_default)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class Problem(Exception):
    """An error answered as ``application/problem+json``; ``code`` is stable for clients."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or code.replace("-", " ").capitalize()
        self.headers = dict(headers or {})
        self.extra = extra


def problem_response(problem: Problem, instance: str = "") -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
    }
    if instance:
        body["instance"] = instance
    body.update(problem.extra)
    return Response(
        dumps(body),
        status_code=problem.status,
        media_type="application/problem+json",
        headers=problem.headers,
    )


def parse_body(model: type[M], body: bytes) -> M:
    """Validate a JSON body against a pydantic model without FastAPI's per-request machinery
    (for hot paths); errors become the same problems as FastAPI's own validation."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _validation_problem(RequestValidationError(_in_body(exc.errors()))) from None


def _in_body(errors: Sequence[Any]) -> list[Any]:
    return [{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]


def _validation_problem(exc: RequestValidationError) -> Problem:
    errors = [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return Problem(400, "malformed-json", "The request body is not valid JSON.", errors=errors)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
    detail = f"{where}: {first['msg']}" if where else str(first["msg"])
    return Problem(422, "validation-error", detail, errors=errors)


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_validation_problem(exc), request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        problem = Problem(exc.status_code, code, str(exc.detail), headers=exc.headers)
        return problem_response(problem, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost layer answers with this, then re-raises: the observability
        # middleware logs the error.
        problem = Problem(500, "internal-error", "An unexpected error occurred; it is logged.")
        return problem_response(problem, request.url.path)

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


class ObservabilityMiddleware:
    """Correlation id in and out (``X-Correlation-ID``), request count and latency by route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cid = headers.get(CORRELATION_HEADER.encode(), b"").decode("latin-1")[:100] or uuid7()
        token = correlation_id.set(cid)
        started = time.perf_counter()
        status, response_started = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (CORRELATION_HEADER.encode(), cid.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"path": scope["path"]})
            if not response_started:
                problem = Problem(
                    500, "internal-error", "An unexpected error occurred; it is logged."
                )
                await problem_response(problem, scope["path"])(scope, receive, send_with_id)
        finally:
            path = scope.get(ROUTE_KEY) or getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.http_requests.labels(scope["method"], path, str(status)).inc()
            metrics.http_latency.labels(scope["method"], path).observe(
                time.perf_counter() - started
            )
            correlation_id.reset(token)


FastHandler = Callable[[bytes], Awaitable[tuple[int, Any]]]
"""A hot-path handler: the raw request body in, (status, JSON-able content) out; may raise
``Problem``."""
ROUTE_KEY = "paycore.route"


def client_address(scope: Scope) -> str:
    """The address of the calling client as the server saw it (uvicorn takes it from
    ``X-Forwarded-For`` when the connection comes from a trusted proxy); empty if unknown."""
    client = scope.get("client")
    return str(client[0]) if client else ""


@dataclass(frozen=True, slots=True)
class WithHeaders:
    """A fast-lane handler that also reads the request headers (names in lower case), e.g.
    a credential, and the client's address (:func:`client_address`). A body over
    ``max_body`` bytes is refused with a 413 before it is read."""

    handle: Callable[[bytes, Mapping[str, str], str], Awaitable[tuple[int, Any]]]
    max_body: int = 1 << 20


RawAnswer = tuple[int, bytes, Sequence[tuple[bytes, bytes]]]
"""Status, a body already rendered, and response headers (content type included)."""


@dataclass(frozen=True, slots=True)
class ByKey:
    """A fast-lane read of one resource named by the path's last segment, registered under the
    path up to it (``("GET", "/orders/")`` serves ``/orders/<key>``). ``route`` is the path
    template reported in metrics (``/orders/{order_uid}``)."""

    handle: Callable[[str], Awaitable[RawAnswer]]
    route: str


FastRoute = FastHandler | WithHeaders | ByKey
"""What the fast lane serves on a ``(method, path)``."""


def body_too_large(limit: int) -> Problem:
    """The 413 answered for a request body over ``limit`` bytes."""
    return Problem(413, "body-too-large", f"The request body exceeds {limit} bytes.")


class FastLane:
    """Serves a few hot ``(method, path)`` pairs as plain ASGI ahead of the framework's
    routing, dependency and middleware stack (measured at 4–5x the cost of the handler
    itself). The same handlers stay mounted as documented framework routes; ``routes`` may be
    filled after the app is built (at startup)."""

    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], FastRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        handler, key = self.routes.get((method, path)), ""
        if handler is None or isinstance(handler, ByKey):  # a ByKey needs a key after its path
            head, _, key = path.rpartition("/")
            handler = self.routes.get((method, head + "/")) if key else None
            if not isinstance(handler, ByKey):
                await self.app(scope, receive, send)
                return
        try:
            if isinstance(handler, ByKey):
                scope[ROUTE_KEY] = handler.route
                await _send_raw(send, *await handler.handle(key))
                return
            scope[ROUTE_KEY] = path
            if isinstance(handler, WithHeaders):
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                declared = headers.get("content-length", "")
                if declared.isdigit() and int(declared) > handler.max_body:
                    raise body_too_large(handler.max_body)
                body = await read_body(receive, limit=handler.max_body)
                status, content = await handler.handle(body, headers, client_address(scope))
            else:
                status, content = await handler(await read_body(receive))
        except Problem as problem:
            await problem_response(problem, path)(scope, receive, send)
            return
        await JSONResponse(content, status_code=status)(scope, receive, send)


async def _send_raw(
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


ReadinessCheck = Callable[[], Awaitable[None]]


async def alive(_body: bytes) -> tuple[int, Any]:
    """``/healthz``: the process answers. Also served by the fast lane where there is one, so
    it is the same server's trivial route next to the hot routes."""
    return 200, {"status": "ok"}


def install_probes(app: FastAPI, checks: Mapping[str, ReadinessCheck]) -> None:
    """``/healthz`` (the process runs), ``/readyz`` (its dependencies answer), ``/metrics``."""

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> Response:
        status, content = await alive(b"")
        return JSONResponse(content, status_code=status)

    @app.get("/readyz", tags=["ops"], summary="Readiness: every dependency answers")
    async def readyz() -> Response:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failing: {type(exc).__name__}"
        ready = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not-ready", "checks": results},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)


class PaycoreAPI(FastAPI):
    """FastAPI with paycore's middleware in front of the framework's own stack rather than
    inside it: the fast lane's hot routes then skip Starlette's error, telemetry and body-limit
    layers (measured at about a fifth of a payment's cost); the observability layer is
    outermost and answers unexpected errors itself."""

    def __init__(
        self, *args: Any, outer: Sequence[tuple[type[Any], dict[str, Any]]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._outer = list(outer)
        self._entry: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._entry is None:
            entry: ASGIApp = super().__call__
            for cls, options in reversed(self._outer):
                entry = cls(entry, **options)
            self._entry = ObservabilityMiddleware(entry)
        await self._entry(scope, receive, send)


def create_app(
    title: str,
    *,
    lifespan: Any = None,
    docs: bool = True,
    middleware: Sequence[tuple[type[Any], dict[str, Any]]] = (),
) -> FastAPI:
    """A FastAPI app with paycore's error model, JSON rendering and observability.
    ``middleware`` (class, options) run inside the observability layer, first listed outermost,
    so every answer, theirs and unexpected errors included, carries the correlation id."""
    app = PaycoreAPI(
        title=title,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        outer=middleware,
    )
    install_error_handlers(app)
    return app
