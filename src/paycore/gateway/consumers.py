"""The gateway's subscriptions: the transaction processor (``transactions``, its own consumer
group) and the result applier (``transactions_result``, the gateway's group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.gateway import messages, service
from paycore.gateway.crypto import Keyring
from paycore.platform.bus import Delivery, Subscription
from paycore.platform.clock import utcnow
from paycore.platform.consumer import BatchHandler, Verdicts

PROCESSOR_GROUP = "gateway-processor"
RESULTS_GROUP = "gateway"


def processor(
    keyring: Keyring, *, batch: int = 100, clock: Callable[[], datetime] = utcnow
) -> tuple[Subscription, BatchHandler]:
    """Decide each transaction once and publish its result (through the outbox)."""

    async def handle(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> Verdicts:
        now = clock()
        today: date = now.date()
        return await service.decide_transactions(
            conn, [d.body for d in deliveries], keyring=keyring, today=today, now=now
        )

    return Subscription(messages.TRANSACTIONS, PROCESSOR_GROUP, batch=batch), handle


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
