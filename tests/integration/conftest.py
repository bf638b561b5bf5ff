"""Fixtures of the integration tier: a migrated PostgreSQL database per test, and the brokers
the context flows are proven on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.db import create_engine
from paycore.platform.migrate import upgrade
from servers import Server


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh PostgreSQL database brought to the latest migration (modules may override)."""
    await asyncio.to_thread(upgrade, postgres_url)
    eng = create_engine(postgres_url)
    yield eng
    await eng.dispose()


@pytest.fixture(params=["nats", "kafka"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each context flow runs once on NATS JetStream and once on Kafka (Tansu)."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    return server.url
