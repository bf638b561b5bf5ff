"""Many rows into a table inside the caller's transaction, the cheapest way each database has.

PostgreSQL: COPY for plain inserts (one round trip, and the least work for the server and for
this process). SQLite: each statement compiled once and run straight on the transaction's own
sqlite3 connection. Through SQLAlchemy a statement costs this process ~0.4 ms of CPU whatever
it holds, plus the bind processing of every value; a consumer's batch is four or five of them,
and that fixed cost decided how small (how soon) its batches could be.

Either way, values must be what the column types take: aware UTC datetimes for ``UtcDateTime``
(COPY skips SQLAlchemy's type processing, so a naive one is not caught there).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.platform.persistence import sqlite_driver
from paycore.platform.persistence.sqlite_batch import compiled_insert, processed_rows
from paycore.platform.persistence.sqlite_driver import patiently

ROWS_PER_STATEMENT = 500
"""SQLite ``INSERT … VALUES (…), (…) RETURNING`` takes at most this many rows at a time
(SQLite limits the parameters of one statement)."""


async def bulk_insert(
    conn: AsyncConnection, table: Table, columns: Sequence[str], records: Sequence[Sequence[Any]]
) -> None:
    """Insert many rows (value tuples in ``columns`` order)."""
    if not records:
        return
    if conn.dialect.name == "postgresql":
        driver = await _postgres_transaction(conn)
        await driver.copy_records_to_table(table.name, columns=list(columns), records=records)
        return
    db = await _sqlite_transaction(conn)
    sql, processors = compiled_insert(conn.dialect, table, tuple(columns))
    marks = ", ".join("?" for _ in columns)
    rows = processed_rows(processors, records)
    await patiently(lambda: db.executemany(f"{sql} VALUES ({marks})", rows))


async def insert_new(
    conn: AsyncConnection,
    table: Table,
    keys: Sequence[str],
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
    *,
    returning: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """Insert the rows whose ``keys`` are not in the table yet (``ON CONFLICT DO NOTHING``: the
    unique index decides, no read first); returns the ``returning`` columns of each row
    inserted, as a tuple."""
    if not records:
        return []
    quote = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "postgresql":
        # One statement of one array per column, on the driver: SQLAlchemy's executemany with
        # RETURNING binds and processes every value of every row in this process (for a
        # consumer's inbox claim of 2,000 ids, a third of the batch's own work).
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)})"  # noqa: S608
            f" SELECT * FROM unnest({_arrays(conn, table, columns)})"
            f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO NOTHING"
            f" RETURNING {', '.join(quote(name) for name in returning)}"
        )  # names come from the table definition, quoted; values travel as parameters
        driver = await _postgres_transaction(conn)
        found = await driver.fetch(sql, *_columns_of(records, len(columns)))
        return [tuple(row) for row in found]
    db = await _sqlite_transaction(conn)
    into, processors = compiled_insert(conn.dialect, table, tuple(columns))
    tail = (
        f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO NOTHING"
        f" RETURNING {', '.join(quote(name) for name in returning)}"
    )
    one = "(" + ", ".join("?" for _ in columns) + ")"
    inserted: list[tuple[Any, ...]] = []
    for start in range(0, len(records), ROWS_PER_STATEMENT):
        part = records[start : start + ROWS_PER_STATEMENT]
        sql = f"{into} VALUES {', '.join(one for _ in part)} {tail}"
        params = [v for row in processed_rows(processors, part) for v in row]
        cursor = await patiently(lambda: db.execute(sql, params))  # noqa: B023 (awaited here)
        inserted += cursor.fetchall()
    return inserted


async def update_rows(
    conn: AsyncConnection,
    table: Table,
    key: str,
    columns: Sequence[str],
    records: Sequence[Sequence[Any]],
) -> None:
    """Set ``columns`` of the rows whose ``key`` is each record's first value (records are
    ``(key, *columns)``). PostgreSQL: one ``UPDATE … FROM unnest(…)`` of one array per column;
    SQLite: one statement run for each record on the transaction's own connection."""
    if not records:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = [key, *columns]
    if conn.dialect.name == "postgresql":
        sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns)
        fields = ", ".join(quote(n) for n in names)
        sql = (
            f"UPDATE {quote(table.name)} SET {sets}"  # noqa: S608
            f" FROM unnest({_arrays(conn, table, names)}) AS v({fields})"
            f" WHERE {quote(table.name)}.{quote(key)} = v.{quote(key)}"
        )  # names come from the table definition, quoted; values travel as parameters
        driver = await _postgres_transaction(conn)
        await driver.execute(sql, *_columns_of(records, len(names)))
        return
    db = await _sqlite_transaction(conn)
    sets = ", ".join(f"{quote(c)} = ?" for c in columns)
    sql = f"UPDATE {quote(table.name)} SET {sets} WHERE {quote(key)} = ?"  # noqa: S608
    rows = [(*row[1:], row[0]) for row in records]
    await patiently(lambda: db.executemany(sql, rows))


def _arrays(conn: AsyncConnection, table: Table, names: Sequence[str]) -> str:
    """``$1::type[], $2::type[] …``: one array parameter per column, of the column's type."""
    types = [table.c[name].type.compile(dialect=conn.dialect) for name in names]
    return ", ".join(f"${i}::{kind}[]" for i, kind in enumerate(types, start=1))


def _columns_of(records: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows turned into one list per column (what ``unnest`` of arrays takes)."""
    return [[row[i] for row in records] for i in range(width)]


async def _postgres_transaction(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside its open transaction."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():  # the driver begins lazily, at the first statement
        await conn.exec_driver_sql("SELECT 1")
    if not driver.is_in_transaction():
        raise RuntimeError("bulk writes need an open transaction (not autocommit)")
    return driver


async def _sqlite_transaction(conn: AsyncConnection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn``, inside its open transaction."""
    driver = (await conn.get_raw_connection()).driver_connection
    if not isinstance(driver, sqlite_driver.Connection):
        raise RuntimeError(f"not a paycore SQLite connection: {driver!r}")
    if not driver.handle.in_transaction:  # SQLAlchemy begins at the first statement
        await conn.exec_driver_sql("SELECT 1")
    if not driver.handle.in_transaction:
        raise RuntimeError("bulk writes need an open transaction (not autocommit)")
    return driver.handle
