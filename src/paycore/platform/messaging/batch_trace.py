"""A consumed batch as a hop of a trace (``observability.tracing``): a new span in the trace of
its first message's ``traceparent`` (a new trace if it has none or a malformed one), current
while the batch is handled, so that its log lines and the events its handler publishes carry
it. Its other messages may come from other spans, other traces: when spans are exported they
are the batch span's links, and the batch's debug line lists their trace ids (both worked out
only then: parsing every message's header costs about a microsecond each)."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Sequence
from types import TracebackType

from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.observability import tracing

log = logging.getLogger(__name__)

MAX_LINKS = 128  # OpenTelemetry's default limit of links per span


class BatchTrace:
    """``with BatchTrace(subscription, consumer, deliveries) as hop:`` handles the deliveries
    as one hop; set ``hop.failed`` if the batch failed (its span's status says so)."""

    def __init__(
        self, subscription: Subscription, consumer: str, deliveries: Sequence[Delivery]
    ) -> None:
        self.context = tracing.continued(deliveries[0].headers.get(tracing.TRACEPARENT))
        self.failed = False
        self._subscription = subscription
        self._consumer = consumer
        self._deliveries = deliveries
        self._started = 0.0
        self._token: contextvars.Token[tracing.TraceContext | None] | None = None

    def __enter__(self) -> BatchTrace:
        self._token = tracing.current.set(self.context)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        try:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("batch handled", extra=self._described())
            if tracing.exporter is not None:
                tracing.exporter(self._span(elapsed, failed=self.failed or error is not None))
        finally:
            if self._token is not None:
                tracing.current.reset(self._token)

    def _described(self) -> dict[str, object]:
        """What the batch's debug line says: topic, consumer, size, the other traces."""
        return {
            "topic": self._subscription.topic,
            "consumer": self._consumer,
            "messages": len(self._deliveries),
            "other_traces": sorted(
                {c.trace_id for c in self._other_callers()} - {self.context.trace_id}
            ),
        }

    def _span(self, elapsed: float, *, failed: bool) -> tracing.FinishedSpan:
        """The batch's span, which just ended after ``elapsed`` seconds."""
        end = time.time_ns()
        return tracing.FinishedSpan(
            f"process {self._subscription.topic}",
            self.context,
            tracing.CONSUMER,
            end - int(elapsed * 1e9),
            end,
            {
                "messaging.destination.name": self._subscription.topic,
                "messaging.consumer.group.name": self._consumer,
                "messaging.batch.message_count": len(self._deliveries),
            },
            failed=failed,
            links=self._other_callers()[:MAX_LINKS],
        )

    def _other_callers(self) -> list[tracing.TraceContext]:
        """The spans that published the batch's messages, other than the one it continues:
        each once, in the batch's order."""
        seen = {(self.context.trace_id, self.context.parent_id)}
        callers = []
        for delivery in self._deliveries:
            caller = tracing.parse(delivery.headers.get(tracing.TRACEPARENT))
            if caller is not None and (caller.trace_id, caller.span_id) not in seen:
                seen.add((caller.trace_id, caller.span_id))
                callers.append(caller)
        return callers
