"""The payments worker's subscription: accepted payments from the ``payments`` topic, recorded
once each, then handed to the dispatcher once their transaction has committed."""

from __future__ import annotations

from collections.abc import Sequence

from paycore.payments import messages, store
from paycore.payments.domain import InvalidPayment
from paycore.payments.service import Dispatcher
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.persistence.uow import Transaction

GROUP = "payments-worker"


def intake(dispatcher: Dispatcher, *, batch: int = 500) -> tuple[Subscription, BatchHandler]:
    """The subscription and its handler: what a batch recorded goes to the dispatcher once
    the batch has committed."""

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        decoded = decode_each([d.body for d in deliveries], messages.decode, own=InvalidPayment)
        recorded = await store.insert_received(tx, [value for _, value in decoded.values])
        if recorded:
            tx.after_commit(lambda: dispatcher.add(recorded))
        return decoded.verdicts

    return Subscription(messages.TOPIC, GROUP, batch=batch), handle
