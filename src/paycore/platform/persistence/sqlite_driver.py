"""SQLite under SQLAlchemy's asyncio engine, run on the event loop's own thread.

aiosqlite sends every call (cursor, execute, fetch, close, commit) to a thread of its own and
waits for the answer: about 0.3 ms per call on an idle 2-core machine and over 1 ms under
load, and a statement through SQLAlchemy is four such calls. The statement itself takes
microseconds (the database is a local file, the commit one fsync), so here it runs where it is
called. This module is the part of aiosqlite's interface that SQLAlchemy's ``aiosqlite``
dialect uses, answered at once; the engine passes ``connect`` as its ``async_creator``.

The one long wait is for SQLite's write lock, held by another process: SQLite's own busy
handler would sleep on the event loop, so connections here have none. A statement refused
with ``SQLITE_BUSY`` is tried again after an asynchronous sleep (0.5 ms, then every 1 ms: a
try costs microseconds, and at 500 orders/s polling every 5 ms made the API's accept p50 20 ms
against 14 ms), the loop serving everything else meanwhile, for up to ``LOCK_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

LOCK_TIMEOUT = 30.0
"""Seconds a statement waits for a lock before it fails with ``database is locked``."""

_RETRYABLE = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_RECOVERY}
"""Busy codes that a later try can get past (``SQLITE_BUSY_SNAPSHOT`` cannot: the
transaction's snapshot is stale and only a new transaction helps)."""


async def patiently(call: Callable[[], T], *, timeout: float = LOCK_TIMEOUT) -> T:
    """``call()``; while SQLite answers busy, sleep without blocking the loop and try again."""
    delay, deadline = 0.0005, 0.0
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in _RETRYABLE:
                raise
            now = time.monotonic()
            deadline = deadline or now + timeout
            if now >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.001)


class Cursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        await patiently(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> Cursor:
        rows = list(parameters)  # a generator could not be replayed after a busy answer
        await patiently(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands for aiosqlite's queue to its thread, which SQLAlchemy's dialect uses directly to
    set the isolation level: the call runs as it is queued."""

    def put_nowait(self, job: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = job
        try:
            result = function()
        except Exception as exc:
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class Connection:
    """An open SQLite connection with aiosqlite's asynchronous interface."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._tx = _RunNow()

    @property
    def _connection(self) -> sqlite3.Connection | None:  # read by SQLAlchemy's dialect
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("Connection closed")
        return self._conn

    @property
    def handle(self) -> sqlite3.Connection:
        """The open sqlite3 connection, for statements run on it directly (``bulk``)."""
        return self._open()

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self._open().cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        conn = self._open()
        await patiently(conn.commit)

    async def rollback(self) -> None:
        self._open().rollback()

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in a write transaction of its own (``BEGIN IMMEDIATE`` … ``COMMIT``),
        all of it in one go: only the wait for the write lock lets other tasks run."""
        conn = self._open()
        await patiently(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            result = work(conn)
            await patiently(conn.commit)
        except BaseException:
            conn.rollback()
            raise
        return result

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def connect(path: str, pragmas: Sequence[str] = ()) -> Connection:
    """A connection without SQLite's sleeping busy handler (``timeout=0``; waits for a lock
    are ``patiently``'s) that leaves transactions to its caller (``isolation_level=None``: a
    writer's ``BEGIN IMMEDIATE`` takes the write lock up front instead of failing on a lock
    upgrade), with each of ``pragmas`` (``"synchronous=FULL"``, …) set."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    wrapped = Connection(conn)
    for pragma in pragmas:
        await (await wrapped.execute(f"PRAGMA {pragma}")).close()
    return wrapped
