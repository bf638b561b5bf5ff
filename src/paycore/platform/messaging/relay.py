"""The outbox relay: moves outbox rows to the broker, by hand-off from this process's writers
and by polling the table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Delete, Select, delete, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import ReturningUpdate
from sqlalchemy.sql.elements import ColumnElement

from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Bus, Envelope
from paycore.platform.observability import metrics
from paycore.platform.persistence.batch import ByKey
from paycore.platform.persistence.db import AnyRow, is_sqlite
from paycore.platform.persistence.outbox import envelope, outbox

log = logging.getLogger(__name__)

BACKLOG_EVERY_SECONDS = 5.0
DELETE_EVERY_SECONDS = 0.05  # rows of confirmed hand-offs are deleted together this often
LEASE = timedelta(seconds=30)  # a relay that died mid-publish frees its rows after this
LEFTOVER = timedelta(seconds=1)  # a polling relay takes rows at least this old


class Relay:
    """Moves outbox rows to the broker, two ways.

    Hand-off: a writer in this process passes the events it just committed (``handoff``), and
    the relay publishes them and deletes their rows, without reading them back. Polling: rows
    nobody handed over (another process's, a crashed one's, the CLI's replays) are claimed from
    the table: on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` for the time of the publish; on
    SQLite (one writer at a time, whose lock must not be held across a broker round trip) by a
    short transaction that leases them (``claimed_until``) first.

    A row is deleted, by message id, only after the broker confirmed it: a crash re-publishes at
    worst, and the message id lets consumers (and JetStream) drop the duplicate. Events leave in
    commit order per relay; with several relays, batches may interleave."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        *,
        poll_seconds: float = 0.05,
        idle_poll_seconds: float = 1.0,
        batch: int = 500,
        max_handed: int = 20_000,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._poll = poll_seconds
        self._idle_poll = max(poll_seconds, idle_poll_seconds)
        self._batch = batch
        self._max_handed = max_handed
        self._handed: deque[Envelope] = deque()
        self._published: list[str] = []  # confirmed hand-offs whose rows are still there
        self._sweep = True  # the first round takes everything left
        self._wake = asyncio.Event()
        self._stopping = False
        self._postgres = not is_sqlite(str(engine.url))
        # Hand-off deletes go through a writer of their own, outside the engine (``ByKey``):
        # every 50 ms on the API's loop, not waited to disk (a delete a machine crash loses
        # only publishes its event again, which consumers drop).
        self._deletes = ByKey(engine, outbox.c.id, synced=False)
        self._deleter_lock = asyncio.Lock()  # stop() closes it, maybe while run() deletes

    def notify(self) -> None:
        """Wake the relay for a round over every waiting row (not only old ones)."""
        self._sweep = True
        self._wake.set()

    def handoff(self, envelopes: Sequence[Envelope]) -> None:
        """Publish these committed events soon. While a sweep is due (at start, after a
        failed publish, when too much was handed over) they are left to it: it reads the
        table in ``seq`` order, so they do not overtake events still waiting there."""
        if not envelopes:
            return
        if not self._sweep:
            self._handed.extend(envelopes)
            if len(self._handed) > self._max_handed:
                self._drop_handed()
        self._wake.set()

    def _drop_handed(self) -> None:
        self._handed.clear()
        self._sweep = True

    async def run(self) -> None:
        """Relay until ``stop()``; publish failures are retried with backoff, never dropped.

        Handed-over events go first. Otherwise a round reads the table: everything after a
        ``notify`` or a failure (a sweep), else only rows older than ``LEFTOVER``, so that it
        does not race the process that just wrote them and is about to hand them over (on
        SQLite, for the one write lock). Each empty round doubles the wait, from
        ``poll_seconds`` up to ``idle_poll_seconds``, so an idle process costs next to nothing;
        work brings it back to ``poll_seconds``."""
        deleter = asyncio.create_task(self._deleter(), name="outbox-deleter")
        try:
            await self._relay()
        finally:
            deleter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deleter

    async def _relay(self) -> None:
        failures, counted_at, wait = 0, 0.0, self._poll
        while not self._stopping:
            if time.monotonic() - counted_at > BACKLOG_EVERY_SECONDS:
                counted_at = time.monotonic()
                with contextlib.suppress(Exception):
                    await self.backlog()
            self._wake.clear()  # here, not before the wait: a wake-up during the round counts
            try:
                if self._handed:
                    sent = await self._relay_handed()
                else:
                    sweep, self._sweep = self._sweep, False
                    try:
                        sent = await self.relay_once(None if sweep else LEFTOVER)
                    except Exception:
                        self._drop_handed()
                        raise
                    if sweep and sent >= self._batch:
                        self._drop_handed()  # more is waiting: sweep on, in seq order
                failures = 0
            except Exception:
                failures += 1
                metrics.outbox_publish_errors.inc()
                log.exception("outbox relay failed; will retry", extra={"failures": failures})
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            if self._handed or sent >= self._batch:
                continue
            wait = self._poll if sent else min(self._idle_poll, wait * 2)
            # asyncio.timeout, not wait_for (which can swallow a cancellation on 3.11)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            if self._wake.is_set():
                wait = self._poll

    async def stop(self) -> None:
        """Flush what is left, then stop the loop."""
        self._stopping = True
        self._wake.set()
        self._drop_handed()  # their rows are in the table: the flush below takes them
        with contextlib.suppress(Exception):
            await self._delete_published()
            while await self.relay_once() > 0:
                pass
        async with self._deleter_lock:
            await self._deletes.close()

    async def _relay_handed(self) -> int:
        """Publish the next handed-over events; their rows are deleted soon after, a few
        batches at a time (``_delete_published``)."""
        count = min(self._batch, len(self._handed))
        batch = [self._handed.popleft() for _ in range(count)]
        try:
            await self._bus.publish(batch)
        except Exception:
            self._drop_handed()  # a sweep publishes them, and what follows, in order
            raise
        self._published.extend(e.id for e in batch)
        _count_published(batch)
        return count

    async def _delete_published(self) -> None:
        """Delete the rows of the handed-over events the broker has confirmed. Until then a
        crash only means publishing them again (consumers drop the repeat)."""
        ids, self._published = self._published, []
        if not ids:
            return
        try:
            async with self._deleter_lock:
                await self._deletes(ids)
        except BaseException:
            self._published[:0] = ids
            raise

    async def _deleter(self) -> None:
        while True:
            await asyncio.sleep(DELETE_EVERY_SECONDS)
            try:
                await self._delete_published()
            except Exception:
                log.warning("deleting published outbox rows failed; will retry", exc_info=True)

    async def relay_once(self, older_than: timedelta | None = None) -> int:
        """Publish one batch (of rows written more than ``older_than`` ago, if given);
        returns how many rows were sent."""
        since = _written_before(older_than)
        if self._postgres:
            # PostgreSQL: claim rows (row locks only) for the time of the publish.
            async with self._engine.begin() as conn:
                claim = self._next_batch().where(since).with_for_update(skip_locked=True)
                rows = (await conn.execute(claim)).all()
                if rows:
                    await self._bus.publish(_envelopes(rows))
                    await conn.execute(_delete([r.id for r in rows]))
        else:
            # A lock-free read first: an idle relay never takes SQLite's single write lock.
            async with self._engine.connect() as conn:
                waiting = (await conn.execute(select(outbox.c.seq).where(since).limit(1))).first()
            rows = []
            if waiting is not None:
                async with self._engine.begin() as conn:
                    rows = sorted((await conn.execute(self._lease(since))).all(), key=_seq)
            if rows:
                try:
                    await self._bus.publish(_envelopes(rows))
                except Exception:
                    await self._release(rows)
                    raise
                async with self._engine.begin() as conn:
                    await conn.execute(_delete([r.id for r in rows]))
        if not rows:
            if older_than is None:  # a polling round looked at old rows only: fresh ones may wait
                metrics.outbox_backlog.set(0)
            return 0
        _count_published(_envelopes(rows))
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

    async def _release(self, rows: Sequence[AnyRow]) -> None:
        """Give back the lease of rows that failed to publish, so the retry takes them first
        (in order) instead of what came after them; if this fails too, the lease runs out."""
        with contextlib.suppress(Exception):
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([r.id for r in rows]))
                    .values(claimed_until=None)
                )

    async def backlog(self) -> int:
        async with self._engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
        metrics.outbox_backlog.set(count)
        return int(count)


def _count_published(envelopes: Iterable[Envelope]) -> None:
    for topic, sent in Counter(e.topic for e in envelopes).items():
        metrics.outbox_published.labels(topic).inc(sent)


def _seq(row: AnyRow) -> int:
    return int(row.seq)


def _written_before(age: timedelta | None) -> ColumnElement[bool]:
    """Rows written more than ``age`` ago (every row when None)."""
    return true() if age is None else outbox.c.created_at < utcnow() - age


def _delete(ids: Sequence[str]) -> Delete:
    # By message id, never by seq: a seq freed by another relay's delete could be reused by a
    # new, unpublished event on some engines, and deleting it would lose that event.
    return delete(outbox).where(outbox.c.id.in_(ids))


def _envelopes(rows: Iterable[AnyRow]) -> list[Envelope]:
    return [envelope(row._mapping) for row in rows]
