"""Prometheus metrics of the platform (HTTP, outbox, consumers), shared by every process. Each
context declares its business metrics in its own ``metrics.py``."""

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


def render() -> tuple[bytes, str]:
    """The text exposition of every registered metric and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
