"""Fixtures of the integration tier (imported by each ``integration/conftest.py``): a migrated
PostgreSQL database per test, and the brokers the context flows are proven on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from servers import Server
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.persistence.db import create_engine
from paycore.schema import upgrade


@contextlib.asynccontextmanager
async def migrated(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``url`` once its database is at the latest migration; disposed after."""
    await asyncio.to_thread(upgrade, url)
    eng = create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh PostgreSQL database brought to the latest migration (modules may override)."""
    async with migrated(postgres_url) as eng:
        yield eng


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each engine in turn: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def each_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``database_url`` brought to the latest migration (SQLite, then PostgreSQL)."""
    async with migrated(database_url) as eng:
        yield eng


@pytest.fixture(params=["nats", "kafka"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Each context flow runs once on NATS JetStream and once on Kafka (Tansu)."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    return server.url
