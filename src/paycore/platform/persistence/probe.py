"""What a command checks of its database before it uses it: that the database answers
(``Unreachable``) and that paycore's migrations were applied to it (``NotMigrated``). Without
Alembic, which the API and worker processes, checking at start, do not otherwise load."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.platform.failures import CONNECT_TIMEOUT_SECONDS, OperatorError, Unreachable, redacted
from paycore.platform.persistence.db import create_engine, is_sqlite, sqlite_file

VERSIONS = "alembic_version"
"""The table where Alembic keeps the revision each branch of the schema is at."""


class NotMigrated(OperatorError):
    """The database lacks paycore's tables, or some of their latest revisions."""

    def __init__(self, url: str, state: str) -> None:
        super().__init__(f"the database at {redacted(url)} {state}: run `paycore migrate`")


@contextlib.asynccontextmanager
async def connection(url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of its own to the database at ``url``; one that cannot be had within
    ``CONNECT_TIMEOUT_SECONDS`` (server down, unknown host or database, credentials refused,
    a file that cannot be opened) is ``Unreachable``."""
    engine = create_engine(url, pool_size=1)
    try:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                conn = await engine.connect()
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            raise Unreachable("database", url, exc) from exc
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await engine.dispose()


async def revisions(url: str) -> set[str]:
    """The revisions the database is at (one per branch of the schema); ``NotMigrated`` when
    it has none. A SQLite file that does not exist is not created."""
    if _no_such_file(url):
        raise NotMigrated(url, "has no paycore tables")
    async with connection(url) as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table(VERSIONS)):
            raise NotMigrated(url, "has no paycore tables")
        query = text("SELECT version_num FROM alembic_version")
        found = {str(v) for v in (await conn.execute(query)).scalars()}
    if not found:
        raise NotMigrated(url, "has no paycore tables")
    return found


def _no_such_file(url: str) -> bool:
    """A SQLite URL naming a file that does not exist (a stat: no need to leave the loop)."""
    return is_sqlite(url) and (file := sqlite_file(url)) != ":memory:" and not Path(file).exists()
