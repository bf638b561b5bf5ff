"""The app every paycore process serves: FastAPI with paycore's error model, exact JSON, the
body limit and observability in front, and the health, readiness and metrics routes."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.platform.ids import uuid7
from paycore.platform.observability import metrics, tracing
from paycore.platform.observability.logging import correlation_id
from paycore.platform.web.bodies import schema_components
from paycore.platform.web.credentials import Credential
from paycore.platform.web.docs import install_docs
from paycore.platform.web.fastlane import ROUTE_KEY, FastRequest
from paycore.platform.web.idempotency import IdempotencyMiddleware
from paycore.platform.web.limits import BodyLimit
from paycore.platform.web.problems import Problem, install_error_handlers, problem_response
from paycore.platform.web.responses import JSONResponse

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Repeating a POST with the same key answers the first answer again (for a"
    " day) instead of doing it twice; the same key with another request is a 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_NAME = CORRELATION_HEADER.encode()
_TRACEPARENT_NAME = tracing.TRACEPARENT.encode()
UNEXPORTED = frozenset({"/healthz", "/readyz", "/metrics"})
"""Routes whose spans are not exported: probes and scrapes, every few seconds, would bury the
traces of real work."""
DEFAULT_MAX_BODY = 1 << 20


class ObservabilityMiddleware:
    """Correlation id in and out (``X-Correlation-ID``), the trace context in and out (the
    caller's ``traceparent`` continued, or a new trace; the answer names the request's span),
    request count and latency by route, and the request's span to the exporter if there is
    one (but for the probes and the metrics)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given, parent = b"", b""
        for name, value in scope["headers"]:
            if name == _CORRELATION_NAME:
                given = value
            elif name == _TRACEPARENT_NAME:
                parent = value
        cid = given.decode("latin-1")[:100] or uuid7()
        trace = tracing.continued(parent.decode("latin-1") if parent else None)
        token = correlation_id.set(cid)
        trace_token = tracing.current.set(trace)
        started = time.perf_counter()
        status, response_started = 500, False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message["headers"] = [
                    *message.get("headers", []),
                    (_CORRELATION_NAME, cid.encode("latin-1")),
                    (_TRACEPARENT_NAME, trace.traceparent.encode()),
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
                await problem_response(problem)(scope, receive, send_with_id)
        finally:
            path = scope.get(ROUTE_KEY) or getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            metrics.http_requests.labels(scope["method"], path, str(status)).inc()
            metrics.http_latency.labels(scope["method"], path).observe(elapsed)
            if tracing.exporter is not None and path not in UNEXPORTED:
                tracing.exporter(_server_span(scope["method"], path, status, trace, elapsed))
            tracing.current.reset(trace_token)
            correlation_id.reset(token)


def _server_span(
    method: str, route: str, status: int, trace: tracing.TraceContext, elapsed: float
) -> tracing.FinishedSpan:
    """The finished span of a request that took ``elapsed`` seconds and just ended."""
    end = time.time_ns()
    return tracing.FinishedSpan(
        f"{method} {route}",
        trace,
        tracing.SERVER,
        end - int(elapsed * 1e9),
        end,
        {"http.request.method": method, "http.route": route, "http.response.status_code": status},
        failed=status >= 500,
    )


class PaycoreAPI(FastAPI):
    """FastAPI with paycore's layers in front of the framework's own stack rather than inside
    it: observability outermost (it answers unexpected errors itself), then the body limit,
    then the app's ``outer`` middleware (idempotency, the fast lane), then Starlette's. The
    fast lane's hot routes thus skip Starlette's error, telemetry and body-limit layers
    (measured at about a fifth of a payment's cost). Starlette builds the stack on the first
    request, through the ``build_middleware_stack`` this class extends."""

    def __init__(
        self,
        *args: Any,
        outer: Sequence[tuple[type[Any], dict[str, Any]]] = (),
        max_body: int = DEFAULT_MAX_BODY,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._outer = list(outer)
        self._max_body = max_body
        self.request_models: set[type[msgspec.Struct]] = set()
        self.credentials: set[Credential] = set()

    def openapi(self) -> dict[str, Any]:
        """The framework's document, completed with what paycore's layers do outside the
        framework's knowledge: the request models' schemas (read by paycore's body reader),
        the credentials the routes take, and the ``Idempotency-Key`` header every POST
        honours when the idempotency layer is in front."""
        if self.openapi_schema is None:
            document = super().openapi()
            components = document.setdefault("components", {})
            models = sorted(self.request_models, key=lambda model: model.__name__)
            schemas = components.setdefault("schemas", {})
            for name, schema in schema_components(models).items():
                if schemas.setdefault(name, schema) != schema:
                    raise ValueError(f"two schemas of the document are named {name}")
            if self.credentials:
                schemes = components.setdefault("securitySchemes", {})
                schemes.update({c.name: c.scheme for c in self.credentials})
            if any(cls is IdempotencyMiddleware for cls, _ in self._outer):
                for operations in document.get("paths", {}).values():
                    if "post" in operations:
                        operations["post"].setdefault("parameters", []).append(IDEMPOTENCY_KEY)
        return self.openapi_schema or {}

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        for cls, options in reversed(self._outer):
            app = cls(app, **options)
        return ObservabilityMiddleware(BodyLimit(app, self._max_body))


def create_app(
    title: str,
    *,
    lifespan: Any = None,
    docs: bool = True,
    middleware: Sequence[tuple[type[Any], dict[str, Any]]] = (),
    max_body: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """A FastAPI app with paycore's error model, JSON rendering, body limit and observability.
    ``middleware`` (class, options) run inside the observability layer and the body limit,
    first listed outermost, so every answer, theirs and unexpected errors included, carries
    the correlation id and the ``traceparent``."""
    app = PaycoreAPI(
        title=title,
        lifespan=lifespan,
        default_response_class=JSONResponse,
        docs_url=None,
        redoc_url=None,
        outer=middleware,
        max_body=max_body,
        # paycore's metrics are its own (Prometheus); FastAPI's OpenTelemetry, left on, looks
        # for a configured provider in the environment on every request (a tenth of a
        # trivial request's cost)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    if docs:
        install_docs(app)
    return app


ReadinessCheck = Callable[[], Awaitable[None]]


async def alive(_request: FastRequest | None = None) -> tuple[int, Any]:
    """``/healthz``: the process answers. Also served by the fast lane where there is one, so
    it is the same server's trivial route next to the hot routes."""
    return 200, {"status": "ok"}


def install_probes(app: FastAPI, checks: Mapping[str, ReadinessCheck]) -> None:
    """``/healthz`` (the process runs), ``/readyz`` (its dependencies answer), ``/metrics``."""

    @app.get("/healthz", tags=["ops"], summary="Liveness")
    async def healthz() -> Response:
        status, content = await alive()
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
