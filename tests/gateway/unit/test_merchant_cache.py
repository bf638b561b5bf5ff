"""Merchants looked up by secret: entries that expired together are looked up once."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_kit import CARD_KEYS
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.gateway import service
from paycore.gateway.auth import Authenticator
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database


class CountedConnect:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine, self.opened = engine, 0

    def __call__(self) -> Any:
        self.opened += 1
        return self.engine.connect()


async def test_merchants_whose_cache_entry_expired_together_are_looked_up_once(
    engine: AsyncEngine,
) -> None:
    hasher, keyring = Hasher("pepper"), Keyring.parse(CARD_KEYS)
    async with Database(engine).transaction() as tx:
        account = await service.create_account(
            tx, name="shop", webhook_url=None, hasher=hasher, keyring=keyring, now=utcnow()
        )
    clock = [0.0]
    connect = CountedConnect(engine)
    auth = Authenticator(connect, hasher, ttl_seconds=5, clock=lambda: clock[0])
    found = await asyncio.gather(*(auth.by_secret(account.secret) for _ in range(30)))
    assert {m.id if m else None for m in found} == {account.row.id}
    assert connect.opened == 1
    clock[0] = 10.0  # the entry expired: a burst of requests refreshes it with one query
    await asyncio.gather(*(auth.by_secret(account.secret) for _ in range(30)))
    assert connect.opened == 2
    assert await auth.by_secret("pcsk_wrong") is None
    assert connect.opened == 3
