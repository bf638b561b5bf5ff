"""The OpenTelemetry bridge (the ``otel`` extra): paycore's finished spans exported over
OTLP/HTTP by the OpenTelemetry SDK. Imported only when an OTLP endpoint is configured
(``tracing.export_otlp``); a process without one imports no OpenTelemetry SDK module.

paycore chooses its trace and span ids itself, before (and without) OpenTelemetry, and they
travel in its messages; so each hop's span is handed to the SDK's batch processor as the
finished record it is (a ``ReadableSpan`` with those ids) instead of being started again
through an SDK tracer, which would draw ids of its own. The processor queues it and exports
from its own thread, off the event loop; spans of unsampled traces are dropped there."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from paycore.platform.observability.tracing import CONSUMER, SERVER, FinishedSpan, TraceContext

_KINDS = {SERVER: SpanKind.SERVER, CONSUMER: SpanKind.CONSUMER}
_SCOPE = InstrumentationScope("paycore")
_OK, _FAILED = Status(StatusCode.UNSET), Status(StatusCode.ERROR)


class OtlpBridge:
    """Exports finished spans to an OTLP/HTTP traces endpoint as ``service`` (unless the
    ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` variables name it)."""

    def __init__(self, endpoint: str, service: str) -> None:
        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: service}))
        self._resource = resource
        self._processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))

    def export(self, span: FinishedSpan) -> None:
        """Queue the span for export (never blocks; a full queue drops it)."""
        context = span.context
        parent = None
        if context.parent_id:
            parent = _context(context.trace_id, context.parent_id, context.sampled, remote=True)
        self._processor.on_end(
            ReadableSpan(
                span.name,
                context=_context(context.trace_id, context.span_id, context.sampled),
                parent=parent,
                resource=self._resource,
                attributes=dict(span.attributes),
                links=[Link(_linked(other)) for other in span.links],
                kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
                status=_FAILED if span.failed else _OK,
                start_time=span.start_ns,
                end_time=span.end_ns,
                instrumentation_scope=_SCOPE,
            )
        )

    def close(self) -> None:
        """Export what is queued, then stop the processor's thread."""
        self._processor.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK


def _linked(other: TraceContext) -> SpanContext:
    return _context(other.trace_id, other.span_id, other.sampled, remote=True)


def _context(trace_id: str, span_id: str, sampled: bool, *, remote: bool = False) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(int(trace_id, 16), int(span_id, 16), remote, flags)
