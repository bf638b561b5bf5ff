"""The unit of work: the one way paycore writes.

``async with db.transaction() as tx:`` opens a database transaction; a service adds to it
statements and rows (``execute``, ``insert``, ``insert_new``), outbox events (``publish``) and
after-commit hooks (``after_commit``). On leaving the block everything commits together; then
the events are handed to the outbox relay and the hooks run, never if it rolled back. Items
written blindly at a high rate (an accepted order, a card transaction) take the batch writer
instead (``db.writer``): group commit, same events and hooks. Contexts import no database
driver; which database it is (SQLite or PostgreSQL) is this package's business.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Column, CursorResult, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Envelope
from paycore.platform.observability import tracing
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence import bulk, fencing, outbox
from paycore.platform.persistence.batch import Build, GroupWriter

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Handoff = Callable[[Sequence[Envelope]], None]
"""Takes the events of a committed transaction (the outbox relay's ``handoff``)."""


class Transaction:
    """An open write transaction (see the module doc). ``conn`` is its SQLAlchemy connection,
    for Core statements."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.events: list[Envelope] = []
        self.hooks: list[Callable[[], None]] = []
        self._rows: list[tuple[Any, ...]] = []  # the events' outbox rows
        self._serialized: set[int] = set()

    async def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> CursorResult[Any]:
        return await self.conn.execute(statement, parameters)

    async def insert(
        self, table: Table, columns: Sequence[str], records: Sequence[Sequence[Any]]
    ) -> None:
        """Many rows (value tuples in ``columns`` order), the cheapest way the database has."""
        await bulk.bulk_insert(self.conn, table, columns, records)

    async def update_rows(
        self, table: Table, key: str, columns: Sequence[str], records: Sequence[Sequence[Any]]
    ) -> None:
        """Set ``columns`` of many rows, each found by its ``key`` (records are
        ``(key, *columns)``), the cheapest way the database has (one statement on
        PostgreSQL)."""
        await bulk.update_rows(self.conn, table, key, columns, records)

    async def insert_new(
        self,
        table: Table,
        keys: Sequence[str],
        columns: Sequence[str],
        records: Sequence[Sequence[Any]],
        *,
        returning: tuple[str, ...],
    ) -> list[tuple[Any, ...]]:
        """The rows whose ``keys`` are not in the table yet (its unique index decides, no read
        first); returns the ``returning`` columns of each row inserted."""
        return await bulk.insert_new(self.conn, table, keys, columns, records, returning=returning)

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
    ) -> str:
        """An event written with the transaction (in the outbox), published once it has
        committed; carries the current correlation id and ``traceparent``. Returns its
        message id."""
        now = utcnow()
        event = outbox.event(
            topic,
            body,
            at=now,
            key=key,
            headers=headers,
            correlation_id=correlation_id.get(),
            traceparent=tracing.header(),
            message_id=message_id,
        )
        self.events.append(event)
        self._rows.append(outbox.row_values(event, outbox.stored_headers(event), now))
        return event.id

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the transaction has committed (never if it rolls back)."""
        self.hooks.append(hook)

    async def serialize(self, key: int) -> None:
        """Wait until no other transaction that asked for ``key`` is open, and hold it until
        this one ends: such transactions commit one after another (PostgreSQL: an advisory
        transaction lock; SQLite has one writer at a time anyway)."""
        if self.conn.dialect.name != "postgresql" or key in self._serialized:
            return
        await self.conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        self._serialized.add(key)

    async def _write_events(self) -> None:
        """The events' outbox rows, in one statement, just before the commit."""
        await bulk.bulk_insert(self.conn, outbox.outbox, outbox.ROW_COLUMNS, self._rows)


class Database:
    """The engine, its units of work and batch writers, and where committed events go."""

    def __init__(self, engine: AsyncEngine, handoff: Handoff | None = None) -> None:
        self.engine = engine
        self._handoff = handoff

    def connect(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A connection for reads (on SQLite it takes no lock)."""
        return self.engine.connect()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A unit of work (see the module doc). On behalf of a request under an
        ``Idempotency-Key`` it also writes the key's effect row (``fencing``): it commits only
        if no other request's effect under the key did, else it rolls back (``ClaimLost``)."""
        claim = fencing.pending()
        async with self.engine.begin() as conn:
            tx = Transaction(conn)
            yield tx
            await tx._write_events()
            if claim is not None:
                await fencing.mark(conn, claim, utcnow())
        if claim is not None:
            claim.committed = True
        self._committed(tx.events, tx.hooks)

    def writer(
        self,
        build: Build[T, R],
        *,
        tables: Sequence[tuple[Table, Sequence[str]]],
        ids_from: Column[Any] | None = None,
        max_batch: int = 200,
        linger: float = 0.0,
    ) -> GroupWriter[T, R]:
        """A batch writer (group commit) into ``tables`` (and the outbox); see ``batch``."""
        return GroupWriter(
            self.engine,
            build,
            tables=tables,
            ids_from=ids_from,
            committed=lambda batch: self._committed(batch.events, batch.hooks),
            max_batch=max_batch,
            linger=linger,
        )

    def _committed(self, events: Sequence[Envelope], hooks: Sequence[Callable[[], None]]) -> None:
        """After a commit: its events to the relay, then its hooks. The work is done and
        committed, so a failing hook is logged, never raised to the caller."""
        if events and self._handoff is not None:
            self._handoff(events)
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("after-commit hook failed", extra={"hook": repr(hook)})
