"""Business metrics of the gateway: transactions, decisions, webhooks."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from paycore.platform.observability.metrics import PIPELINE_BUCKETS

transactions_accepted = Counter(
    "paycore_gateway_transactions_accepted_total", "Transactions accepted (stored pending)"
)
decisions = Counter(
    "paycore_gateway_decisions_total",
    "Transactions decided by the processor, counted once each when the decision commits",
    ["status"],
)
decision_latency = Histogram(
    "paycore_gateway_decision_seconds",
    "From a transaction's acceptance (its event written) to its decision committed",
    buckets=PIPELINE_BUCKETS,
)
webhook_attempts = Counter(
    "paycore_gateway_webhook_attempts_total", "Webhook POST attempts", ["outcome"]
)
