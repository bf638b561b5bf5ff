"""The fulfillment worker's subscription: orders from the ``orders`` topic, stored once each."""

from __future__ import annotations

from collections.abc import Sequence

from paycore.fulfillment import service
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.persistence.uow import Transaction

GROUP = "fulfillment"


def ingestion(*, batch: int = 1000) -> tuple[Subscription, BatchHandler]:
    """What the fulfillment worker consumes, and how."""

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        return await service.ingest(tx, [d.body for d in deliveries])

    return Subscription(service.TOPIC, GROUP, batch=batch), handle
