"""Fixtures of the unit tier (imported by each ``unit/conftest.py``): a real SQLite file
database, a non-UTC local clock, an in-memory broker that delivers to subscribers, the
``paycore`` command run in this process."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from memory_bus import MemoryBus
from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from paycore.platform.persistence import db


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite file database with every paycore table."""
    eng = db.create_engine("sqlite+aiosqlite:///" + str(tmp_path / "t.db"))
    async with eng.begin() as conn:
        await conn.run_sync(db.metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def count_rows(engine: AsyncEngine) -> Callable[..., Awaitable[int]]:
    """``await count_rows(table, *where)``: how many rows of a table match."""

    async def count(table: Table, *where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    return count


@pytest.fixture
def local_time_utc_minus_3() -> Iterator[None]:
    """The host's local time zone is UTC-3 (a server in Brazil) for the duration of a test."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "BRT3"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


@pytest.fixture
def fake_bus() -> MemoryBus:
    """An in-memory broker that delivers to subscribers (``memory_bus``)."""
    return MemoryBus()


@dataclass(frozen=True)
class Cli:
    """The ``paycore`` command in this process, on an empty data dir of its own."""

    data_dir: Path

    @property
    def database(self) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / 'paycore.db'}"

    def run(self, *args: str) -> Result:
        from paycore.__main__ import app

        return CliRunner().invoke(app, list(args))


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli.run("dead-letters", "list")``: defaults but for an empty data dir, from a working
    directory without a ``.env`` file."""
    for name in [n for n in os.environ if n.startswith("PAYCORE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PAYCORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path / "data")
