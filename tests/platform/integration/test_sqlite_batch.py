"""SQLite's part of the batch writer: statements compiled once and run on a connection of the
writer's own, set up as the engine's and waiting for the engine's write transaction; a value
shared by consecutive rows processed once. (What every engine does is in
``test_batch_writer.py``.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.persistence.batch import Batch
from paycore.platform.persistence.db import SQLITE_PRAGMAS, UtcDateTime, create_engine
from paycore.platform.persistence.sqlite_batch import ManyInserts, processed_rows
from paycore.platform.persistence.sqlite_driver import connect
from paycore.platform.persistence.uow import Database
from paycore.schema import upgrade

_tables = MetaData()
notes = Table(
    "test_notes",
    _tables,
    Column("name", String(50), primary_key=True),
    Column("written_at", UtcDateTime(), nullable=False),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}"
    await asyncio.to_thread(upgrade, url)
    eng = create_engine(url)
    async with eng.begin() as conn:
        await conn.run_sync(_tables.create_all)
    yield eng
    await eng.dispose()


def _note(name: str, at: datetime | None = None) -> dict[str, object]:
    return {"name": name, "written_at": at or utcnow()}


def _build(items: Sequence[str], ids: Sequence[int], batch: Batch) -> list[str]:
    batch.add(notes, [_note(name) for name in items])
    return list(items)


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(notes))).scalar_one())


async def test_rows_are_needed_for_every_table(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="at least one table"):
        ManyInserts(engine)
    insert_notes = ManyInserts(engine, (notes, ("name", "written_at")), (notes, ("name",)))
    with pytest.raises(ValueError, match="rows for 2 tables"):
        insert_notes(sqlite3.connect(":memory:"), [_note("a")])


async def test_the_writer_connection_is_set_up_as_the_engines(tmp_path: Path) -> None:
    conn = await connect(str(tmp_path / "p.db"), SQLITE_PRAGMAS)  # what the writer opens
    settings = [
        conn.handle.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("synchronous", "foreign_keys", "journal_mode")
    ]
    await conn.close()
    assert settings == [2, 1, "wal"]  # synchronous=FULL: each commit is fsynced
    assert "synchronous=FULL" in SQLITE_PRAGMAS


async def test_a_batch_waits_for_the_engines_write_transaction(engine: AsyncEngine) -> None:
    writer = Database(engine).writer(_build, tables=((notes, ("name", "written_at")),))
    async with engine.begin() as conn:  # holds SQLite's write lock in this process
        await conn.execute(insert(notes).values(_note("first")))
        batch = asyncio.create_task(writer.submit("second"))
        await asyncio.sleep(0.05)  # the loop runs on while the batch waits for the lock
        assert not batch.done()
    assert await batch == "second"
    assert await _count(engine) == 2
    await writer.stop()


async def test_timestamps_are_stored_in_sqlalchemys_own_text_form(engine: AsyncEngine) -> None:
    at = datetime.fromisoformat("2026-03-01T12:30:15.250000+00:00")

    def build(items: Sequence[str], ids: Sequence[int], batch: Batch) -> list[str]:
        batch.add(notes, [_note(name, at) for name in items])
        return list(items)

    writer = Database(engine).writer(build, tables=((notes, ("name", "written_at")),))
    await writer.submit("n")
    await writer.stop()
    async with engine.connect() as conn:
        raw = (await conn.exec_driver_sql("SELECT written_at FROM test_notes")).scalar()
    assert raw == "2026-03-01 12:30:15.250000"  # as SQLAlchemy writes it for SQLite


def test_a_value_shared_by_consecutive_rows_is_processed_once() -> None:
    calls: list[object] = []

    def stamp(value: object) -> str:
        calls.append(value)
        return f"<{value}>"

    shared, other = ["stamp"], ["another"]  # lists: compared by identity, not value
    rows = [(1, shared), (2, shared), (3, other), (4, shared)]
    assert processed_rows([None, stamp], rows) == [
        [1, "<['stamp']>"],
        [2, "<['stamp']>"],
        [3, "<['another']>"],
        [4, "<['stamp']>"],
    ]
    assert calls == [shared, other, shared]  # once per run of the same object
    with pytest.raises(ValueError, match="expected 2 values, got 1"):
        processed_rows([None, stamp], [(1,)])
