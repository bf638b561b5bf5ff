"""Business metrics of the payments context: payments and the processors."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

payments_accepted = Counter("paycore_payments_accepted_total", "Payments accepted (on the broker)")
payments_processed = Counter(
    "paycore_payments_processed_total", "Payments stored by a processor and counted"
)
processor_calls = Counter(
    "paycore_processor_calls_total", "Calls to payment processors", ["processor", "outcome"]
)
processor_failing = Gauge(
    "paycore_processor_failing", "A processor's own health report (1 failing)", ["processor"]
)
processor_latency = Gauge(
    "paycore_processor_min_response_seconds", "A processor's reported response time", ["processor"]
)
payments_waiting = Gauge(
    "paycore_payments_waiting", "Payments received and not yet stored by a processor"
)
