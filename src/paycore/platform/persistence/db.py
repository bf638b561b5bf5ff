"""Database engine: SQLite (embedded default) or PostgreSQL by URL; one metadata for Alembic."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    Integer,
    MetaData,
    Row,
    any_,
    bindparam,
    event,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

from paycore.platform.persistence import sqlite_driver

BIG_ID = BigInteger().with_variant(Integer, "sqlite")
"""A 64-bit key that SQLite can autoincrement (its rowid alias must be declared INTEGER)."""

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape."""


def among(conn: AsyncConnection, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column`` is one of ``values``. On PostgreSQL ``= ANY($1)`` with one array parameter:
    one bind and one plan however many values (an ``IN`` of thousands binds, sends and plans
    each; for a ledger batch's ~3,000 accounts it took twice as long). Elsewhere ``IN (…)``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY  # only where PostgreSQL is used

        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(list(values))  # type: ignore[no-any-return]


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored and returned in UTC on every engine (SQLite keeps no offset):
    aware values are converted to UTC on the way in, naive ones refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: paycore stores aware UTC timestamps only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class SQLiteEngine(AsyncEngine):
    """``begin()`` (a write transaction) starts with ``BEGIN IMMEDIATE``, taking SQLite's single
    write lock up front so it never fails on a lock upgrade; ``connect()`` (reads) starts a
    deferred transaction that takes no lock at all in WAL mode, so readers never queue behind
    writers, in this process or another."""

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect() as conn:
            await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn


_WRITE = "paycore_sqlite_write"


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An async engine. SQLite runs in WAL mode with synchronous=FULL so a commit is durable,
    through one pooled connection per process (SQLite has one writer at a time anyway; a
    group-commit writer keeps a connection of its own, ``sqlite_batch``). Its statements run on
    the event loop's thread (``sqlite_driver``), not in a thread of their own."""
    if is_sqlite(url):
        database = sqlite_file(url)
        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        plain = create_async_engine(
            url,
            async_creator=lambda: sqlite_driver.connect(database, SQLITE_PRAGMAS),
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        event.listen(plain.sync_engine, "begin", _sqlite_begin)
        return SQLiteEngine(plain.sync_engine)
    # At most ``pool_size`` connections, and each one opened is kept: no overflow. A pool's
    # overflow connections are closed as soon as they are returned, so a burst of requests
    # meant a new PostgreSQL backend (a fork and a login) for many of them, which made the
    # burst longer: 450-600 opened in 20 s of 1,000 banking transfers/s, accept p99 5-7 s,
    # against 25 and 0.5-2 s kept (docs/benchmarks.md, ninth sitting). No pre-ping either (a
    # round trip on every checkout, ~10% of the API's CPU under load): a connection found
    # dead invalidates the pool and the caller's retry gets a fresh one.
    return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_recycle=1800)


SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON")
"""How every SQLite connection here is set up: durable commits, foreign keys enforced."""
UNSYNCED_PRAGMAS = tuple(
    "synchronous=NORMAL" if pragma.startswith("synchronous=") else pragma
    for pragma in SQLITE_PRAGMAS
)
"""The same for a connection whose commits need not wait for the disk: in WAL mode they reach
it with the next synced commit or checkpoint (a crash of the process loses none of them)."""


def sqlite_file(url: str | URL) -> str:
    """The file a SQLite URL names (``:memory:`` when none)."""
    return make_url(url).database or ":memory:"


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")
