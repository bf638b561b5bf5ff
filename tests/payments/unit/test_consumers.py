"""The payments worker's consumer as the worker runs it: a message that can never be decoded is
a dead letter after one attempt; a database that went away is retried."""

from __future__ import annotations

from typing import Any

import pytest
from consumer_kit import DEEP_JSON, FlakyDatabase, consume, refused_at_once
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.payments import consumers, messages, service, store
from paycore.payments.domain import Payment, Router
from paycore.platform.persistence.uow import Database

CORRELATION_ID = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"


def _intake(engine: AsyncEngine) -> Any:
    return consumers.intake(service.Dispatcher(Database(engine), {}, Router()))


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (DEEP_JSON, "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"v": 1, "correlationId": "x", "amountCents": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"v": 1, "correlationId": "x", "amountCents": 1.5, "receivedAt": 1}', "integer"),
    ],
)
async def test_a_message_that_cannot_be_decoded_is_dead_lettered_at_once(
    engine: AsyncEngine, fake_bus: Any, body: bytes, error: str
) -> None:
    outcome = await consume(Database(engine), _intake(engine), [body], bus=fake_bus)
    assert error in refused_at_once(outcome)


async def test_a_database_that_went_away_is_retried(
    engine: AsyncEngine, fake_bus: Any, count_rows: Any
) -> None:
    body = messages.encode(Payment(CORRELATION_ID, 1990), 1_700_000_000_000)
    db = FlakyDatabase(engine, failures=2)
    outcome = await consume(db, _intake(engine), [body], bus=fake_bus)
    assert (outcome.calls, outcome.letters) == (3, [])
    assert await count_rows(store.payments) == 1
