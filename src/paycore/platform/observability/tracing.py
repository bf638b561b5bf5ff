"""W3C Trace Context: one trace id from an HTTP request through the outbox and the broker into
the consumers, and in every log line on the way.

A hop is a unit of work of one process: an HTTP request, a consumed batch. Each gets a span id
of its own, in the trace of what caused it: the caller's ``traceparent`` header, the batch's
first message's; or, with none (or a malformed one, which is ignored, never an error), in a new
trace. The hop's ``TraceContext`` is ``current`` while it runs: log lines carry its trace and
span ids, and the events it publishes carry its ``traceparent`` (``header()``), whose parent id
is the hop's span id, the parent of the consumer's span in turn.

Nothing here is exported by default. When an exporter is installed (``install``: the optional
OpenTelemetry bridge, ``otel``, when an OTLP endpoint is configured), each hop hands it a
``FinishedSpan`` with the same ids; the cost without one is a few ids drawn per hop.
"""

from __future__ import annotations

import contextvars
import logging
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
"""The header, in HTTP requests and answers and in message headers alike."""

_HEADER = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?")
_NO_TRACE, _NO_SPAN = "0" * 32, "0" * 16
_SAMPLED_FLAGS = frozenset("13579bdf")  # the last hex digit of the flags: bit 0 set


class TraceContext(NamedTuple):  # a tuple: half the cost of a frozen dataclass to make
    """A hop's place in its trace: the trace id, its own span id, the span id of what caused
    it (``parent_id``: empty for a trace it started) and whether the trace is sampled (the
    caller's choice; paycore samples every trace it starts)."""

    trace_id: str
    span_id: str
    parent_id: str = ""
    sampled: bool = True

    @property
    def traceparent(self) -> str:
        """The header naming this hop as the parent of what it causes."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("trace", default=None)
"""The trace context of the hop being handled (None outside one)."""


def parse(header: str | None) -> TraceContext | None:
    """The caller's context in a ``traceparent`` header (its span id as ``span_id``), or None
    if there is none or it is malformed: lower-case hex only, a version other than ``ff``
    (version ``00`` exactly 55 characters; a later version may append ``-`` and more), a trace
    id and a parent id not all zeros."""
    if not header:
        return None
    header = header.strip()
    if _HEADER.fullmatch(header) is None:
        return None
    version, trace_id, parent_id = header[:2], header[3:35], header[36:52]
    if version == "ff" or (version == "00" and len(header) != 55):
        return None
    if trace_id == _NO_TRACE or parent_id == _NO_SPAN:
        return None
    return TraceContext(trace_id, parent_id, "", header[54] in _SAMPLED_FLAGS)


def continued(header: str | None) -> TraceContext:
    """A new hop: a new span in the trace of ``header`` (a ``traceparent``), or in a new trace
    if it is missing or malformed."""
    caller = parse(header)
    trace_id, span_id = new_ids()
    if caller is None:
        return TraceContext(trace_id, span_id)
    return TraceContext(caller.trace_id, span_id, caller.span_id, caller.sampled)


def new_ids() -> tuple[str, str]:
    """A random trace id and span id, neither all zeros: 24 bytes of Python's ``random``
    (ids need to be unique, not secret; as OpenTelemetry's own generator, and a fork reseeds
    it), drawn at once (half the cost of ``os.urandom``, a third of two draws)."""
    while True:
        drawn = random.randbytes(24).hex()
        trace_id, span_id = drawn[:32], drawn[32:]
        if trace_id != _NO_TRACE and span_id != _NO_SPAN:
            return trace_id, span_id


def header() -> str:
    """The ``traceparent`` of the current hop, for what it publishes; empty outside one."""
    trace = current.get()
    return "" if trace is None else trace.traceparent


# --- export ------------------------------------------------------------------------------

SERVER, CONSUMER = "server", "consumer"


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    """A hop once it has ended, for an exporter: its name (``<METHOD> <route>``,
    ``process <topic>``), its context, kind (``SERVER``, ``CONSUMER``), start and end (epoch
    nanoseconds), attributes, whether it failed, and the contexts it is linked to (a batch's
    other messages, when they came from other spans)."""

    name: str
    context: TraceContext
    kind: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, str | int] = field(default_factory=dict)
    failed: bool = False
    links: Sequence[TraceContext] = ()


Exporter = Callable[[FinishedSpan], None]
"""Takes a finished span; must not block (the OpenTelemetry bridge queues it)."""

exporter: Exporter | None = None
"""Where finished spans go; None (the default) when nothing exports them."""


def install(export: Exporter | None) -> None:
    """Hand every finished span to ``export`` from now on (None: to nothing)."""
    global exporter
    exporter = export


def export_otlp(endpoint: str, service: str) -> Callable[[], None] | None:
    """Export spans over OTLP/HTTP to ``endpoint`` (the traces URL, ``…/v1/traces``) as
    ``service`` (unless ``OTEL_SERVICE_NAME`` says otherwise) with the OpenTelemetry SDK, the
    ``otel`` extra. Returns what flushes and stops the export, or None if the extra is not
    installed (said in the log once; the process runs on, exporting nothing)."""
    try:
        from paycore.platform.observability import otel
    except ImportError as exc:
        log.warning(
            "an OTLP endpoint is set but the OpenTelemetry SDK is not installed (pip install "
            "'paycore[otel]'): spans are not exported",
            extra={"missing": exc.name or str(exc)},
        )
        return None
    bridge = otel.OtlpBridge(endpoint, service)
    install(bridge.export)

    def stop() -> None:
        install(None)
        bridge.close()

    return stop
