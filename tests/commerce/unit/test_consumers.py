"""The analytics service's consumers as its worker runs them: a message that can never be
decoded is a dead letter after one attempt, whatever its decoder raised; a database that went
away is retried."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from consumer_kit import DEEP_JSON, FlakyDatabase, consume, refused_at_once
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce import messages
from paycore.commerce.analytics import store
from paycore.commerce.analytics.board import MemoryBoard
from paycore.commerce.analytics.consumers import analytics_subscriptions
from paycore.platform.persistence.uow import Database

CHALLENGE = {
    "codigoPedido": 1001,
    "codigoCliente": 1,
    "itens": [{"produto": "lápis", "quantidade": 2, "preco": 1.10}],
}


def _consumer(topic: str) -> Any:
    return next(c for c in analytics_subscriptions(MemoryBoard()) if c[0].topic == topic)


def _challenge(**changes: Any) -> bytes:
    return orjson.dumps({**CHALLENGE, **changes})


@pytest.mark.parametrize(
    ("topic", "body", "error"),
    [
        (messages.CHALLENGE_QUEUE, DEEP_JSON, "RecursionError"),
        (
            messages.CHALLENGE_QUEUE,
            b'{"codigoPedido": 1, "codigoCliente": 1, "itens": '
            b'[{"produto": "a", "quantidade": 1, "preco": 1e999999}]}',
            "at most",
        ),
        (messages.CHALLENGE_QUEUE, b"\xff\xfe", "not JSON"),
        (messages.ORDER_CREATED, DEEP_JSON, "not JSON"),
        (
            messages.ORDER_CREATED,
            b'{"type": "commerce.order-created", "version": 1, "orderId": ' + b"9" * 5000 + b"}",
            "not JSON",
        ),
    ],
)
async def test_a_message_that_cannot_be_decoded_is_dead_lettered_at_once(
    engine: AsyncEngine, fake_bus: Any, topic: str, body: bytes, error: str
) -> None:
    outcome = await consume(Database(engine), _consumer(topic), [body], bus=fake_bus)
    assert error in refused_at_once(outcome)


async def test_a_database_that_went_away_is_retried(
    engine: AsyncEngine, fake_bus: Any, count_rows: Any
) -> None:
    db = FlakyDatabase(engine, failures=2)
    consumer = _consumer(messages.CHALLENGE_QUEUE)
    outcome = await consume(db, consumer, [_challenge()], bus=fake_bus)
    assert (outcome.calls, outcome.letters) == (3, [])
    assert await count_rows(store.analytics_orders) == 1
