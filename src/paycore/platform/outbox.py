"""Transactional outbox: events are written in the same transaction as the state they describe,
then a relay publishes them with broker confirms and removes them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Delete,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.elements import ColumnElement

from paycore.platform import metrics
from paycore.platform.bus import CORRELATION_ID, CREATED_AT, Bus, Envelope
from paycore.platform.clock import utcnow
from paycore.platform.db import BIG_ID, AnyRow, UtcDateTime, is_sqlite, metadata
from paycore.platform.ids import uuid7
from paycore.platform.logging import correlation_id

log = logging.getLogger(__name__)

BACKLOG_EVERY_SECONDS = 5.0
LEASE = timedelta(seconds=30)  # a relay that died mid-publish frees its rows after this
LEFTOVER = timedelta(seconds=1)  # a polling relay takes rows at least this old

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BIG_ID, primary_key=True, autoincrement=True),
    Column("id", String(200), nullable=False, unique=True),  # message ids: uuid, dlq-…, replay-…
    Column("topic", String(200), nullable=False),
    Column("key", String(200)),
    Column("headers", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("claimed_until", UtcDateTime()),
    sqlite_autoincrement=True,
)


_ENQUEUED = "paycore.outbox.enqueued"


def take_enqueued(conn: AsyncConnection) -> bool:
    """Whether events were enqueued on ``conn`` since the last call (and forget it): a
    transaction that wrote none has nothing to wake a relay for."""
    return bool(conn.info.pop(_ENQUEUED, False))


async def enqueue(
    conn: AsyncConnection,
    topic: str,
    body: bytes,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> str:
    """Add an event to the outbox inside the caller's transaction; returns its message id."""
    msg_id = message_id or uuid7()
    all_headers = dict(headers or {})
    if (cid := correlation_id.get()) and CORRELATION_ID not in all_headers:
        all_headers[CORRELATION_ID] = cid
    conn.info[_ENQUEUED] = True
    await conn.execute(
        insert(outbox).values(
            id=msg_id,
            topic=topic,
            key=key,
            headers=orjson.dumps(all_headers).decode(),
            body=body,
            created_at=utcnow(),
        )
    )
    return msg_id


async def enqueue_many(
    conn: AsyncConnection, topic: str, events: Sequence[tuple[bytes, str | None, str]]
) -> list[str]:
    """Add events ``(body, key, correlation id)`` of one topic in one statement (group commit:
    each event keeps the correlation id of the request it came from); returns their ids."""
    ids = [uuid7() for _ in events]
    now = utcnow()
    conn.info[_ENQUEUED] = True
    await conn.execute(
        insert(outbox),
        [
            {
                "id": msg_id,
                "topic": topic,
                "key": key,
                "headers": orjson.dumps({CORRELATION_ID: cid} if cid else {}).decode(),
                "body": body,
                "created_at": now,
            }
            for msg_id, (body, key, cid) in zip(ids, events, strict=True)
        ],
    )
    return ids


class Relay:
    """Moves outbox rows to the broker. Several relays may run (one per process) without
    publishing a row twice: on PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED`` for
    the time of the publish; on SQLite (one writer at a time, whose lock must not be held across
    a broker round trip) a short transaction leases them (``claimed_until``) first.
    A row is deleted, by message id, only after the broker confirmed it: a crash re-publishes at
    worst, and the message id lets consumers (and JetStream) drop the duplicate. Events leave in
    ``seq`` order per relay; with several relays, batches may interleave."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        *,
        poll_seconds: float = 0.05,
        idle_poll_seconds: float = 1.0,
        batch: int = 500,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._poll = poll_seconds
        self._idle_poll = max(poll_seconds, idle_poll_seconds)
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        self._skip_locked = not is_sqlite(str(engine.url))

    def notify(self) -> None:
        """Wake the relay now (called after a commit that enqueued events)."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until ``stop()``; publish failures are retried with backoff, never dropped.

        A commit in this process wakes the relay at once (``notify``) and it relays whatever
        is waiting. Polling is only for rows other processes left (a crashed one's, the CLI's
        replays): a polling round takes rows older than ``LEFTOVER``, so it does not race the
        relay of the process that just wrote them (on SQLite, for the one write lock). Each
        empty poll doubles the wait, from ``poll_seconds`` up to ``idle_poll_seconds``, so an
        idle process costs next to nothing; rows found bring it back to ``poll_seconds``."""
        failures, counted_at, wait = 0, 0.0, self._poll
        older_than: timedelta | None = None  # the first round takes everything left
        while not self._stopping:
            if time.monotonic() - counted_at > BACKLOG_EVERY_SECONDS:
                counted_at = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.backlog()
            self._wake.clear()  # here, not before the wait: a commit during the round counts
            try:
                sent = await self.relay_once(older_than)
                failures = 0
            except Exception:
                failures += 1
                metrics.outbox_publish_errors.inc()
                log.exception("outbox relay failed; will retry", extra={"failures": failures})
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            if sent < self._batch:
                wait = self._poll if sent else min(self._idle_poll, wait * 2)
                # asyncio.timeout, not wait_for (which can swallow a cancellation on 3.11)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                woken = self._wake.is_set()
                older_than = None if woken else LEFTOVER
                if woken:
                    wait = self._poll

    async def stop(self) -> None:
        """Flush what is left, then stop the loop."""
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(Exception):
            while await self.relay_once() > 0:
                pass

    async def relay_once(self, older_than: timedelta | None = None) -> int:
        """Publish one batch (of rows written more than ``older_than`` ago, if given);
        returns how many rows were sent."""
        since = _written_before(older_than)
        if self._skip_locked:
            # PostgreSQL: claim rows (row locks only) for the time of the publish.
            async with self._engine.begin() as conn:
                claim = self._next_batch().where(since).with_for_update(skip_locked=True)
                rows = (await conn.execute(claim)).all()
                if rows:
                    await self._bus.publish(list(_envelopes(rows)))
                    await conn.execute(_delete(rows))
        else:
            # A lock-free read first: an idle relay never takes SQLite's single write lock.
            async with self._engine.connect() as conn:
                waiting = (await conn.execute(select(outbox.c.seq).where(since).limit(1))).first()
            rows = []
            if waiting is not None:
                async with self._engine.begin() as conn:
                    rows = sorted((await conn.execute(self._lease(since))).all(), key=_seq)
            if rows:
                await self._bus.publish(list(_envelopes(rows)))
                async with self._engine.begin() as conn:
                    await conn.execute(_delete(rows))
        if not rows:
            if older_than is None:  # a polling round looked at old rows only: fresh ones may wait
                metrics.outbox_backlog.set(0)
            return 0
        for row in rows:
            metrics.outbox_published.labels(row.topic).inc()
        return len(rows)

    def _next_batch(self) -> Select[Any]:
        return select(outbox).order_by(outbox.c.seq).limit(self._batch)

    def _lease(self, since: ColumnElement[bool]) -> ReturningUpdate[Any]:
        """Claim the next free (or abandoned) rows for ``LEASE`` and return them."""
        now = utcnow()
        free = or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
        batch = select(outbox.c.seq).where(free, since).order_by(outbox.c.seq).limit(self._batch)
        return (
            update(outbox)
            .where(outbox.c.seq.in_(batch.scalar_subquery()), free)
            .values(claimed_until=now + LEASE)
            .returning(*outbox.c)
        )

    async def backlog(self) -> int:
        async with self._engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        metrics.outbox_backlog.set(count)
        return int(count)


def _seq(row: AnyRow) -> int:
    return int(row.seq)


def _written_before(age: timedelta | None) -> ColumnElement[bool]:
    """Rows written more than ``age`` ago (every row when None)."""
    return true() if age is None else outbox.c.created_at < utcnow() - age


def _delete(rows: Sequence[AnyRow]) -> Delete:
    # By message id, never by seq: a seq freed by another relay's delete could be reused by a
    # new, unpublished event on some engines, and deleting it would lose that event.
    return delete(outbox).where(outbox.c.id.in_([r.id for r in rows]))


def _envelopes(rows: Iterable[AnyRow]) -> Iterable[Envelope]:
    for row in rows:
        yield Envelope(
            topic=row.topic,
            body=row.body,
            id=row.id,
            key=row.key,
            headers={
                **orjson.loads(row.headers),
                CREATED_AT: str(int(row.created_at.timestamp() * 1000)),
            },
        )
