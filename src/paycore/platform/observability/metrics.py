"""Prometheus metrics shared by every process; contexts add their business counters here too."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# from a request to an asynchronous outcome (broker, worker, database): milliseconds to a minute
PIPELINE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

http_requests = Counter(
    "paycore_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
http_latency = Histogram(
    "paycore_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
outbox_published = Counter("paycore_outbox_published_total", "Events relayed", ["topic"])
outbox_backlog = Gauge("paycore_outbox_backlog", "Events waiting in the outbox")
outbox_publish_errors = Counter("paycore_outbox_publish_errors_total", "Relay publish failures")
consumed = Counter(
    "paycore_messages_consumed_total", "Messages handled", ["topic", "consumer", "outcome"]
)
consume_latency = Histogram(
    "paycore_message_handle_seconds",
    "Time to handle one batch",
    ["topic", "consumer"],
    buckets=LATENCY_BUCKETS,
)
consumer_lag = Gauge(
    "paycore_consumer_lag_seconds", "Age of the newest message handled", ["topic", "consumer"]
)
dead_letters = Counter(
    "paycore_dead_letters_total", "Messages dead-lettered", ["topic", "consumer"]
)

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

gateway_transactions_accepted = Counter(
    "paycore_gateway_transactions_accepted_total", "Transactions accepted (stored pending)"
)
gateway_decisions = Counter(
    "paycore_gateway_decisions_total",
    "Transactions decided by the processor, counted once each when the decision commits",
    ["status"],
)
gateway_decision_latency = Histogram(
    "paycore_gateway_decision_seconds",
    "From a transaction's acceptance (its event written) to its decision committed",
    buckets=PIPELINE_BUCKETS,
)
gateway_webhook_attempts = Counter(
    "paycore_gateway_webhook_attempts_total", "Webhook POST attempts", ["outcome"]
)


def render() -> tuple[bytes, str]:
    """The text exposition of every registered metric and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
