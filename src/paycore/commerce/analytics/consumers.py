"""Broker subscribers of the analytics service: our order events and the challenge's queue."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from paycore.commerce import messages
from paycore.commerce.analytics import service
from paycore.commerce.analytics.board import Board
from paycore.commerce.domain import Order
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.persistence.uow import Transaction

GROUP = "analytics"


def analytics_subscriptions(
    board: Board, *, batch: int = 100
) -> list[tuple[Subscription, BatchHandler]]:
    """What the analytics service consumes, and how each message is handled."""
    return [
        (
            Subscription(messages.ORDER_CREATED, GROUP, batch=batch),
            _recorder(board, "commerce", messages.decode_order_created),
        ),
        (
            Subscription(
                messages.CHALLENGE_QUEUE, GROUP, queue=messages.CHALLENGE_QUEUE, batch=batch
            ),
            _recorder(board, "btg", messages.decode_challenge_order),
        ),
    ]


def _recorder(board: Board, source: str, decode: Callable[[bytes], Order]) -> BatchHandler:
    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        decoded = decode_each([d.body for d in deliveries], decode, own=messages.BadMessage)
        verdicts = decoded.verdicts
        received = [
            (index, service.Received(order, deliveries[index].id, deliveries[index].body))
            for index, order in decoded.values
        ]
        recorded = await service.record_orders(
            tx,
            [r for _, r in received],
            board=board,
            source=source,
            topic=deliveries[0].topic if deliveries else "",
        )
        for (index, _), verdict in zip(received, recorded, strict=True):
            verdicts[index] = verdict
        return verdicts

    return handle
