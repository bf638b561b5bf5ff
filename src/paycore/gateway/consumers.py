"""The gateway's subscriptions: the transaction processor (``transactions``, its own consumer
group) and the result applier (``transactions_result``, the gateway's group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

from paycore.gateway import messages, metrics, service
from paycore.gateway.domain import APPROVED, REJECTED
from paycore.platform.cards import Keyring
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import CREATED_AT, Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.persistence.uow import Transaction

PROCESSOR_GROUP = "gateway-processor"
RESULTS_GROUP = "gateway"


def processor(
    keyring: Keyring, *, batch: int = 100, clock: Callable[[], datetime] = utcnow
) -> tuple[Subscription, BatchHandler]:
    """Decide each transaction once and publish its result (through the outbox). The
    decisions are counted by status, with their latency since acceptance, once they commit."""
    for status in (APPROVED, REJECTED):
        metrics.decisions.labels(status)  # both series exist from the start

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        now = clock()
        today: date = now.date()
        decided = await service.decide_transactions(
            tx, [d.body for d in deliveries], keyring=keyring, today=today, now=now
        )
        if decided.statuses:  # counted once they commit (a rolled back batch counts later)
            counted = [
                (status, _since_accepted(deliveries[index], now))
                for index, status in decided.statuses.items()
            ]
            tx.after_commit(lambda: _count_decisions(counted))
        return decided.verdicts

    return Subscription(messages.TRANSACTIONS, PROCESSOR_GROUP, batch=batch), handle


def _since_accepted(delivery: Delivery, now: datetime) -> float | None:
    """Seconds from the transaction's event being written (it commits with the pending
    transaction) to ``now``; None if the message does not say when."""
    written = delivery.headers.get(CREATED_AT, "")
    return max(0.0, now.timestamp() - int(written) / 1000) if written.isdigit() else None


def _count_decisions(counted: list[tuple[str, float | None]]) -> None:
    for status, seconds in counted:
        metrics.decisions.labels(status).inc()
        if seconds is not None:
            metrics.decision_latency.observe(seconds)


def results(
    *,
    batch: int = 100,
    clock: Callable[[], datetime] = utcnow,
    webhooks_queued: Callable[[], None] | None = None,
) -> tuple[Subscription, BatchHandler]:
    """Apply each decision to the merchant's view once (and queue its webhook); once a batch
    that queued deliveries has committed, ``webhooks_queued`` (the dispatcher's wake-up)."""

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        applied = await service.apply_results(tx, [d.body for d in deliveries], now=clock())
        if applied.webhooks and webhooks_queued is not None:
            tx.after_commit(webhooks_queued)
        return applied.verdicts

    return Subscription(messages.RESULTS, RESULTS_GROUP, batch=batch), handle
