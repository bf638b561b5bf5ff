"""The gateway's subscriptions: the transaction processor (``transactions``, its own consumer
group) and the result applier (``transactions_result``, the gateway's group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.gateway import messages, metrics, service
from paycore.gateway.domain import APPROVED, REJECTED
from paycore.platform.cards import Keyring
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import CREATED_AT, Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts

PROCESSOR_GROUP = "gateway-processor"
RESULTS_GROUP = "gateway"


def processor(
    keyring: Keyring, *, batch: int = 100, clock: Callable[[], datetime] = utcnow
) -> tuple[Subscription, BatchHandler]:
    """Decide each transaction once and publish its result (through the outbox). The
    decisions are counted by status, with their latency since acceptance, once they commit."""
    for status in (APPROVED, REJECTED):
        metrics.decisions.labels(status)  # both series exist from the start

    async def handle(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> Verdicts:
        now = clock()
        today: date = now.date()
        decided = await service.decide_transactions(
            conn, [d.body for d in deliveries], keyring=keyring, today=today, now=now
        )
        if decided.statuses:
            counted = [
                (status, _since_accepted(deliveries[index], now))
                for index, status in decided.statuses.items()
            ]
            _when_committed(conn, lambda: _count_decisions(counted))
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


def _when_committed(conn: AsyncConnection, action: Callable[[], None]) -> None:
    """Run ``action`` when the transaction of ``conn`` commits, never if it rolls back (the
    consumer then handles its messages again, and they count then)."""
    event.listen(conn.sync_connection, "commit", lambda _conn: action(), once=True)


class WebhooksQueued:
    """Wakes the webhook dispatcher after a commit that queued deliveries (and only then)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._queued = False

    def mark(self) -> None:
        self._queued = True

    def after_commit(self) -> None:
        if self._queued:
            self._queued = False
            self._wake()


def results(
    *,
    batch: int = 100,
    clock: Callable[[], datetime] = utcnow,
    webhooks: WebhooksQueued | None = None,
) -> tuple[Subscription, BatchHandler]:
    """Apply each decision to the merchant's view once (and queue its webhook)."""

    async def handle(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> Verdicts:
        applied = await service.apply_results(conn, [d.body for d in deliveries], now=clock())
        if applied.webhooks and webhooks is not None:
            webhooks.mark()
        return applied.verdicts

    return Subscription(messages.RESULTS, RESULTS_GROUP, batch=batch), handle
