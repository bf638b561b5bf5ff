"""Business metrics of banking: transfers accepted, posted and rejected, how long posting took,
holds and their expiries, card authorizations."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from paycore.platform.observability.metrics import PIPELINE_BUCKETS

transfers_accepted = Counter(
    "paycore_banking_transfers_accepted_total", "Transfers accepted over HTTP (applied later)"
)
transfers = Counter(
    "paycore_banking_transfers_total",
    "Transfers the ledger applied (by kind: single, pending, post, void, expire) or refused, "
    "once each when the outcome commits",
    ["kind", "outcome"],
)
posting_latency = Histogram(
    "paycore_banking_posting_seconds",
    "From a transfer's acceptance (its event written) to its outcome committed",
    buckets=PIPELINE_BUCKETS,
)
ledger_batches = Counter(
    "paycore_banking_ledger_batches_total",
    "Batches of transfer requests the ledger worker applied: 'ahead' (applied while the batch "
    "before was being written, and still true in its turn) or 'in_turn'",
    ["applied"],
)
card_authorizations = Counter(
    "paycore_banking_card_authorizations_total",
    "Card authorizations by outcome (approved, or why declined: insufficient-funds, "
    "card-blocked, wrong-cvv …), once each when it commits",
    ["outcome"],
)
held = Gauge(
    "paycore_banking_held_cents",
    "What pending transfers hold, over all accounts, in minor units (the ledger worker's last "
    "look, every few seconds)",
)
