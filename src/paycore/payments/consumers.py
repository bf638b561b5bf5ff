"""The payments worker's subscription: accepted payments from the ``payments`` topic, recorded
once each, then handed to the dispatcher once their transaction has committed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.payments import messages, store
from paycore.payments.domain import InvalidPayment, Payment
from paycore.payments.service import Dispatcher
from paycore.payments.store import Pending
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts

GROUP = "payments-worker"


def intake(
    dispatcher: Dispatcher, *, batch: int = 500
) -> tuple[Subscription, BatchHandler, Callable[[], None]]:
    """The subscription, its handler, and the hook to run after each commit (it queues what
    the committed batches recorded; a payment queued from a transaction that rolled back is
    dropped by the dispatcher when pinning finds no row)."""
    recorded: list[Pending] = []

    async def handle(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> Verdicts:
        verdicts: list[str | None] = []
        received: list[tuple[Payment, int]] = []
        for delivery in deliveries:
            try:
                received.append(messages.decode(delivery.body))
                verdicts.append(None)
            except InvalidPayment as exc:
                verdicts.append(str(exc))
        recorded.extend(await store.insert_received(conn, received))
        return verdicts

    def after_commit() -> None:
        if recorded:
            dispatcher.add(recorded)
            recorded.clear()

    return Subscription(messages.TOPIC, GROUP, batch=batch), handle, after_commit
