"""PostgreSQL's part of the batch writer (``batch``): rows for several tables in one statement,
run outside an explicit transaction, so a whole batch costs one round trip and one commit
(instead of BEGIN, one INSERT per table and COMMIT); ids drawn from a table's sequence in
blocks, so rows can name each other (an order's lines, its event) before they are written; and
the plain driver connection such a writer runs on.

The statement is a chain of data-modifying CTEs, each inserting ``unnest`` of one array per
column: one statement is atomic, so every table gets its rows or none does."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Column, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.exc import DataError, IntegrityError

T = TypeVar("T")
R = TypeVar("R")

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]

Rows = Sequence[Mapping[str, Any]]


class MultiInsert:
    """``await insert(conn, rows_for_first_table, rows_for_second_table, …)`` writes them all
    in one autocommitted statement. Values pass through each column type's bind processing (a
    ``UtcDateTime`` still refuses a naive datetime)."""

    def __init__(self, *targets: tuple[Table, Sequence[str]]) -> None:
        if not targets:
            raise ValueError("MultiInsert needs at least one table")
        self._targets = [(table, list(columns)) for table, columns in targets]
        self._processors = [
            [table.c[name].type.bind_processor(_DIALECT) for name in columns]
            for table, columns in self._targets
        ]
        self.sql = _statement(self._targets)

    async def __call__(self, conn: DirectConnection, *rows_per_table: Rows) -> None:
        if len(rows_per_table) != len(self._targets):
            raise ValueError(f"expected rows for {len(self._targets)} tables")
        params: list[list[Any]] = []
        for (_, columns), processors, rows in zip(
            self._targets, self._processors, rows_per_table, strict=True
        ):
            for name, process in zip(columns, processors, strict=True):
                values = [row[name] for row in rows]
                params.append([process(v) for v in values] if process else values)
        await conn.execute(self.sql, *params)


def _array_type(column: Column[Any]) -> str:
    """The array type the column's values travel as: its type without modifiers, so the
    insert assigns them as a plain ``INSERT`` would. An explicit cast to ``VARCHAR(100)``
    would silently cut a longer value instead of refusing it."""
    return re.sub(r"\(.*?\)", "", column.type.compile(_DIALECT)) + "[]"


def _statement(targets: Sequence[tuple[Table, Sequence[str]]]) -> str:
    quote = _DIALECT.identifier_preparer.quote
    placeholders = iter(range(1, 10_000))
    inserts = []
    for table, columns in targets:
        arrays = ", ".join(
            f"${next(placeholders)}::{_array_type(table.c[name])}" for name in columns
        )
        names = ", ".join(quote(name) for name in columns)
        # Names come from the table definitions (each checked by ``table.c[name]``), values
        # travel as parameters.
        inserts.append(
            f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
        )
    *first, last = inserts
    ctes = ", ".join(f"w{n} AS ({sql})" for n, sql in enumerate(first))
    return f"WITH {ctes} {last}" if ctes else last


class IdBlocks:
    """Ids from the sequence behind an autoincrement column, fetched a block at a time.
    Ids a process took but never wrote (it stopped) are a gap, as with any sequence; with
    several processes, ids are unique but not in commit order (neither are a sequence's)."""

    def __init__(self, column: Column[Any], *, block: int = 1000) -> None:
        self._table, self._column = column.table.name, column.name
        self._block = block
        self._free: list[int] = []

    async def take(self, conn: DirectConnection, count: int) -> list[int]:
        while len(self._free) < count:
            rows = await conn.fetch(
                "SELECT nextval(pg_get_serial_sequence($1, $2)) FROM generate_series(1, $3)",
                self._table,
                self._column,
                max(self._block, count - len(self._free)),
            )
            self._free.extend(int(row[0]) for row in rows)
        taken, self._free = self._free[:count], self._free[count:]
        return taken


class DirectConnection:
    """One driver (asyncpg) connection of its own, opened on first use and again after it
    broke, for a writer that runs one statement at a time (a group-commit loop, a relay):
    SQLAlchemy's work per statement (pool checkout, events, cursor) costs this process more
    than the statement itself. Statements autocommit; a refused row raises SQLAlchemy's
    ``IntegrityError`` or ``DataError``, as through the engine."""

    def __init__(self, url: URL, *, settings: Mapping[str, str] | None = None) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._settings = dict(settings or {})  # the session's own (``SET`` at connect)
        self._conn: asyncpg.Connection | None = None

    async def execute(self, sql: str, *args: Any) -> None:
        await self._run(lambda conn: conn.execute(sql, *args), sql)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        result: list[Any] = await self._run(lambda conn: conn.fetch(sql, *args), sql)
        return result

    async def _run(self, call: Callable[[asyncpg.Connection], Awaitable[Any]], sql: str) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
        conn = self._conn
        try:
            return await call(conn)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql, None, exc) from exc
        except asyncpg.DataError as exc:  # a value the column refuses (too long, out of range)
            raise DataError(sql, None, exc) from exc
        except BaseException as exc:
            if not _refused_statement(exc):  # the session itself may be gone or mid-protocol
                conn.terminate()
                self._conn = None
            raise

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None


def _refused_statement(exc: BaseException) -> bool:
    """An error the server gave for one statement, on a session that goes on working."""
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, asyncpg.PostgresConnectionError | asyncpg.exceptions.OperatorInterventionError
    )
