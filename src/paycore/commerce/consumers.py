"""Broker subscribers of the analytics service: our order events and the challenge's queue."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.commerce import messages, service
from paycore.commerce.analytics import Board
from paycore.commerce.domain import CommerceError, Order
from paycore.platform.bus import Delivery, Subscription
from paycore.platform.consumer import Handler, Rejected

GROUP = "analytics"


def analytics_subscriptions(
    board: Board, *, batch: int = 100
) -> list[tuple[Subscription, Handler]]:
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


def _recorder(board: Board, source: str, decode: Callable[[bytes], Order]) -> Handler:
    async def handle(conn: AsyncConnection, delivery: Delivery) -> None:
        try:
            order = decode(delivery.body)
            await service.record_order(
                conn,
                order,
                board=board,
                source=source,
                topic=delivery.topic,
                message_id=delivery.id,
                body=delivery.body,
            )
        except (messages.BadMessage, CommerceError) as exc:
            raise Rejected(str(exc)) from exc

    return handle
