"""For the tracing tests: log lines as a process writes them (JSON, formatted when logged, in the
context of the hop being handled), finished spans caught instead of exported, caller
``traceparent`` headers, and an OTLP/HTTP receiver that decodes what it is sent."""

from __future__ import annotations

import contextlib
import http.server
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from paycore.platform.observability import tracing
from paycore.platform.observability.logging import JsonFormatter

CALLER = tracing.TraceContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
"""A caller's span (the example of the W3C recommendation)."""


class Lines(logging.Handler):
    """Keeps each log record as the JSON line a paycore process writes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))

    def saying(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["msg"] == message]


@contextlib.contextmanager
def logged(*names: str, level: int = logging.DEBUG) -> Iterator[Lines]:
    """The lines the ``names`` loggers write (at ``level`` and above) meanwhile."""
    lines = Lines()
    loggers = [logging.getLogger(name) for name in names]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(lines)
        logger.setLevel(level)
    try:
        yield lines
    finally:
        for logger, before in zip(loggers, saved, strict=True):
            logger.removeHandler(lines)
            logger.setLevel(before)


@contextlib.contextmanager
def caught_spans() -> Iterator[list[tracing.FinishedSpan]]:
    """The spans finished meanwhile, caught by an exporter of the test's own."""
    spans: list[tracing.FinishedSpan] = []
    tracing.install(spans.append)
    try:
        yield spans
    finally:
        tracing.install(None)


def traced(trace: tracing.TraceContext) -> dict[str, str]:
    """Headers naming ``trace``'s span as the parent of what they go with."""
    return {tracing.TRACEPARENT: trace.traceparent}


@dataclass(frozen=True)
class ReceivedSpan:
    """A span as an OTLP receiver decoded it (ids in hex, as in a ``traceparent``)."""

    service: str
    name: str
    kind: str  # SPAN_KIND_SERVER, SPAN_KIND_CONSUMER…
    trace_id: str
    span_id: str
    parent_id: str
    links: list[tuple[str, str]]
    attributes: dict[str, Any]
    failed: bool


class OtlpReceiver:
    """A tiny OTLP/HTTP traces receiver on 127.0.0.1: it answers every POST 200 and keeps its
    path and protobuf body (``posted``); ``spans()`` decodes them (with the
    ``opentelemetry-proto`` package)."""

    def __init__(self) -> None:
        posted: list[tuple[str, bytes]] = []
        self.posted = posted

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posted.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL (``PAYCORE_OTLP_ENDPOINT``); traces are POSTed to ``/v1/traces``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[ReceivedSpan]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for _, body in list(self.posted):
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    found += [
                        _received(str(resource["service.name"]), s) for s in scope_spans.spans
                    ]
        return found


def _received(service: str, span: Any) -> ReceivedSpan:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    return ReceivedSpan(
        service=service,
        name=span.name,
        kind=Span.SpanKind.Name(span.kind),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex(),
        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
        attributes=_attributes(span.attributes),
        failed=span.status.code == Status.STATUS_CODE_ERROR,
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    """OTLP key-values as a dict (strings, integers, booleans, doubles)."""
    return {pair.key: getattr(pair.value, pair.value.WhichOneof("value")) for pair in pairs}
