"""The gateway's consumers as its worker runs them (the processor on ``transactions``, the
result applier on ``transactions_result``): a message that can never be decoded or opened is a
dead letter after one attempt, whatever its decoder raised; a database that went away is
retried."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from consumer_kit import DEEP_JSON, FlakyDatabase, consume, refused_at_once
from gateway_kit import CARD_KEYS
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.gateway import consumers, messages, service, store
from paycore.gateway.domain import Card
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.persistence.uow import Database

KEYRING = Keyring.parse(CARD_KEYS)
CARD = Card("4111111111111111", "Ana Lima", 12, 2030, "123")
TX_ID, ACCOUNT_ID = "01938f6e-0000-7000-8000-000000000001", "01938f6e-0000-7000-8000-0000000000aa"
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _transaction(**sealed_changes: Any) -> bytes:
    sealed = replace(messages.seal_card(KEYRING, TX_ID, CARD.facts()), **sealed_changes)
    return messages.encode_transaction(TX_ID, ACCOUNT_ID, 1050, sealed)


def _processor() -> Any:
    return consumers.processor(KEYRING, clock=lambda: NOW)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (_transaction(nonce=b"1234"), "card envelope is malformed"),  # AES-GCM: a ValueError
        (_transaction(ciphertext=b"tampered"), "does not authenticate"),
        (_transaction(kid="gone"), "unknown card key id"),
        (DEEP_JSON, "not JSON"),
        (b"\xff\xfe", "not JSON"),
    ],
)
async def test_a_transaction_that_cannot_be_decoded_is_dead_lettered_at_once(
    engine: AsyncEngine, fake_bus: Any, body: bytes, error: str
) -> None:
    outcome = await consume(Database(engine), _processor(), [body], bus=fake_bus)
    assert error in refused_at_once(outcome)


@pytest.mark.parametrize(
    "body", [DEEP_JSON, b'{"id": "x", "status": "approved", "error_message": 7}']
)
async def test_a_result_that_cannot_be_decoded_is_dead_lettered_at_once(
    engine: AsyncEngine, fake_bus: Any, body: bytes
) -> None:
    outcome = await consume(Database(engine), consumers.results(), [body], bus=fake_bus)
    refused_at_once(outcome)


async def test_a_database_that_went_away_is_retried_by_both_consumers(
    engine: AsyncEngine, fake_bus: Any, count_rows: Any
) -> None:
    db = Database(engine)
    async with db.transaction() as tx:
        account = await service.create_account(
            tx, name="shop", webhook_url=None, hasher=Hasher("p"), keyring=KEYRING, now=NOW
        )
    account_id = account.row.id
    prepared = service.prepare_transaction(
        account_id, 1050, CARD, keyring=KEYRING, hasher=Hasher("p"), now=NOW
    )
    writer = service.transaction_writer(db)
    await writer.submit(prepared)
    await writer.stop()

    decided = await consume(
        FlakyDatabase(engine, 2), _processor(), [prepared.message], bus=fake_bus
    )
    assert (decided.calls, decided.letters) == (3, [])
    assert await count_rows(store.decisions) == 1

    result = messages.encode_result(prepared.record.id, "approved", "")
    applied = await consume(FlakyDatabase(engine, 2), consumers.results(), [result], bus=fake_bus)
    assert (applied.calls, applied.letters) == (3, [])
    assert await count_rows(store.transactions, store.transactions.c.status == "approved") == 1
