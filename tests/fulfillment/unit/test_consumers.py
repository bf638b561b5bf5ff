"""The fulfillment worker's consumer as the worker runs it: a message that can never be decoded
is a dead letter after one attempt; a database that went away is retried."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from consumer_kit import DEEP_JSON, FlakyDatabase, consume, refused_at_once
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.fulfillment import consumers, store
from paycore.fulfillment.generator import generate
from paycore.platform.persistence.uow import Database


def _order() -> bytes:
    body, defect = next(generate(1, 0.0, 7))
    assert defect is None
    return body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (DEEP_JSON, "not-an-object"),
        (b"\xff\xfe", "not-json"),
        (b'{"order_uid": ' + b"[" * 100_000, "wrong-type"),
    ],
)
async def test_a_message_that_cannot_be_decoded_is_dead_lettered_at_once(
    engine: AsyncEngine, fake_bus: Any, body: bytes, error: str
) -> None:
    outcome = await consume(Database(engine), consumers.ingestion(), [body], bus=fake_bus)
    assert refused_at_once(outcome).startswith(error)


async def test_a_database_that_went_away_is_retried(
    engine: AsyncEngine, fake_bus: Any, count_rows: Any
) -> None:
    body = _order()
    db = FlakyDatabase(engine, failures=2)
    outcome = await consume(db, consumers.ingestion(), [body], bus=fake_bus)
    assert (outcome.calls, outcome.letters) == (3, [])
    assert (
        await count_rows(store.orders, store.orders.c.order_uid == orjson.loads(body)["order_uid"])
        == 1
    )
