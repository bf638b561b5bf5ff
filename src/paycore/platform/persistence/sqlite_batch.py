"""SQLite's part of the batch writer (``batch``) and of bulk writes (``bulk``): inserts compiled
once with SQLAlchemy's bind processing and run straight on a sqlite3 connection, and the next
ids a table gives. The SQLite counterpart of ``pg_batch``: what PostgreSQL does in one
statement, SQLite does in one transaction that never lets go of the event loop between its
statements."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, Dialect, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")
R = TypeVar("R")

Rows = Sequence[Mapping[str, Any]]

_SQLITE = sqlite.dialect()


Processor = Callable[[Any], Any] | None


@functools.lru_cache(maxsize=256)  # keyed by the engine's dialect: a few per process
def compiled_insert(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[Processor]]:
    """``INSERT INTO table (columns)`` (the text up to ``VALUES``) and each column's bind
    processor for ``dialect``, as SQLAlchemy would apply them (a ``UtcDateTime`` refuses a
    naive datetime and is stored in the same text form)."""
    quote = dialect.identifier_preparer.quote
    # dialect_impl: the type as this dialect stores it (its own text form of a timestamp,
    # which SQLite compares as text)
    types = [table.c[name].type.dialect_impl(dialect) for name in columns]
    names = ", ".join(quote(name) for name in columns)
    # Names come from the table definitions (each checked above), values travel as parameters.
    sql = f"INSERT INTO {quote(table.name)} ({names})"
    return sql, [t.bind_processor(dialect) for t in types]


def processed_rows(
    processors: Sequence[Processor], rows: Iterable[Sequence[Any]]
) -> list[list[Any]]:
    """Rows' values through their columns' bind processors. A value that is the very object
    the row before had in that column (a batch's one timestamp) is processed once: a
    timestamp's processor formats text, about 5 µs, and a batch's rows often share theirs."""
    columns = range(len(processors))
    before: list[Any] = [_NONE] * len(processors)
    done: list[Any] = [None] * len(processors)
    out = []
    for values in rows:
        if len(values) != len(processors):
            raise ValueError(f"expected {len(processors)} values, got {len(values)}")
        row = list(values)
        for i in columns:
            process = processors[i]
            if process is not None:
                value = row[i]
                if value is not before[i]:
                    before[i], done[i] = value, process(value)
                row[i] = done[i]
        out.append(row)
    return out


_NONE = object()


class ManyInserts:
    """``insert(db, rows_for_first_table, rows_for_second_table, …)``: one ``executemany`` per
    table, in the caller's transaction, values bind-processed as through SQLAlchemy
    (``compiled_insert``)."""

    def __init__(self, engine: AsyncEngine, *targets: tuple[Table, Sequence[str]]) -> None:
        if not targets:
            raise ValueError("ManyInserts needs at least one table")
        self._targets = []
        for table, columns in targets:
            sql, processors = compiled_insert(engine.dialect, table, tuple(columns))
            marks = ", ".join("?" for _ in columns)
            self._targets.append((f"{sql} VALUES ({marks})", list(columns), processors))

    def __call__(self, db: sqlite3.Connection, *rows_per_table: Rows) -> None:
        if len(rows_per_table) != len(self._targets):
            raise ValueError(f"expected rows for {len(self._targets)} tables")
        for (sql, columns, processors), rows in zip(self._targets, rows_per_table, strict=True):
            if not rows:  # a table this batch writes nothing to (effect rows, mostly)
                continue
            db.executemany(
                sql, processed_rows(processors, ([row[c] for c in columns] for row in rows))
            )


def next_ids(db: sqlite3.Connection, column: Column[Any], count: int) -> range:
    """The ids the next ``count`` rows would get from SQLite (an ``INTEGER PRIMARY KEY`` takes
    one more than the largest in the table), for rows that must name each other before they
    are written. Only valid inside the write transaction that then writes them."""
    quote = _SQLITE.identifier_preparer.quote
    # Names come from the table definition, quoted as SQLAlchemy would.
    sql = f"SELECT coalesce(max({quote(column.name)}), 0) FROM {quote(column.table.name)}"  # noqa: S608
    (largest,) = db.execute(sql).fetchone()
    return range(int(largest) + 1, int(largest) + 1 + count)
