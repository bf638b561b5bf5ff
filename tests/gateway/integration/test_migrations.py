"""The gateway's migrations on a database that already holds transactions (issue 22, items 12 and
17): a row stored before keeps its holder's name until the worker seals it, and its fingerprint
(the platform-wide one then) moves to the operator's column, leaving the merchant's empty."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text

from paycore import schema
from paycore.platform.persistence.db import create_engine

BEFORE = "gateway_0001"
OLD_FINGERPRINT = "f" * 64
OLD_ROW = (
    "INSERT INTO gateway_transactions (id, account_id, amount_cents, brand, last4, exp_month, "
    "exp_year, holder, fingerprint, status, error_message, created_at, updated_at) VALUES ('t1', "
    "'a1', 1050, 'visa', '1111', 12, 2030, 'Ana Lima', 'ffffffffffffffffffffffffffffffffffffffff"
    "ffffffffffffffffffffffff', 'approved', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


async def _run(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = await conn.execute(text(statement))
                if result.returns_rows:
                    rows = [tuple(r) for r in result]
            return rows
    finally:
        await engine.dispose()


def test_rows_stored_before_keep_their_data_in_the_new_columns(database_url: str) -> None:
    config = schema.alembic_config(database_url)
    command.upgrade(config, BEFORE)
    asyncio.run(
        _run(
            database_url,
            "INSERT INTO gateway_accounts (id, name, secret_hash, secret_hint, status, "
            "created_at, updated_at) VALUES ('a1', 'shop', 'h', 'pcsk_', 'active', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
            OLD_ROW,
        )
    )
    command.upgrade(config, "heads")
    rows = asyncio.run(
        _run(
            database_url,
            "SELECT holder, holder_sealed, fingerprint, platform_fingerprint "
            "FROM gateway_transactions",
        )
    )
    assert rows == [("Ana Lima", None, None, OLD_FINGERPRINT)]
    command.downgrade(config, BEFORE)
    rows = asyncio.run(_run(database_url, "SELECT holder, fingerprint FROM gateway_transactions"))
    assert rows == [("Ana Lima", OLD_FINGERPRINT)]
