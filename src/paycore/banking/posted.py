"""``banking.transfer.posted``, published from the journal itself.

Every entry the ledger writes makes one posted event. The journal is durable and ordered
already (``seq`` without gaps; writers hold the ledger's lock until they commit, so what is
committed is always a prefix of it), so it is these events' outbox: ``published_seq`` keeps
the last entry whose event the broker confirmed, and the publisher sends what follows, in
order. The ledger's transaction writes nothing per event. A crash between the broker's
confirmation and the cursor's update sends those events again with the same message id
(``posted-<transfer id>``): JetStream drops the repeat, consumers drop it by id.

Banking's workers run a publisher each; the one holding the lease ``banking-posted``
publishes, the others stand by. The ledger worker hands over its batches' entries as they
commit, so they are not read back; what other processes write (deposits, card payments, Pix
settled by the API, the batch endpoint) is read from the journal when the publisher polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from paycore.banking import messages
from paycore.banking.ledger import store
from paycore.banking.ledger.domain import Entry
from paycore.platform.messaging.bus import Bus, Envelope
from paycore.platform.observability import metrics
from paycore.platform.persistence import lease, outbox
from paycore.platform.persistence.uow import Database

log = logging.getLogger(__name__)

LEASE = "banking-posted"
SAVE_EVERY = 0.1  # seconds: while events flow, the cursor is stored at most this often


Posted = tuple[Any, ...]
"""An entry's ``messages.POSTED_FIELDS``: all its event needs."""
_ID, _SEQ = messages.POSTED_FIELDS.index("id"), messages.POSTED_FIELDS.index("seq")


def event(posted: Posted) -> Envelope:
    """The posted event of an entry, dated when the entry was written."""
    return outbox.event(
        messages.POSTED,
        messages.encode_posted(posted),
        at=posted[-1],
        key=posted[_ID],
        message_id=f"posted-{posted[_ID]}",
    )


class Publisher:
    """Publishes the journal's posted events (see the module doc); ``run`` until cancelled."""

    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        batch: int = 2000,
        poll_seconds: float = 0.05,
        idle_poll_seconds: float = 0.5,
        max_handed: int = 20_000,
    ) -> None:
        self._db = db
        self._bus = bus
        self._batch = batch
        self._poll = poll_seconds
        self._idle_poll = max(poll_seconds, idle_poll_seconds)
        self._max_handed = max_handed
        self._handed: dict[int, Posted] = {}  # by seq, all after the cursor
        self._published: int | None = None  # the cursor, while this process holds the lease
        self._saved = 0  # the cursor as stored
        self._saved_at = 0.0
        self._wake = asyncio.Event()

    def handoff(self, entries: Sequence[Entry]) -> None:
        """Entries just committed in this process: published without being read back, if
        this process publishes and they come next (else polling reads them)."""
        if self._published is None or not entries:
            return
        if len(self._handed) + len(entries) > self._max_handed:
            self._handed.clear()  # behind: reading the journal catches up
            return
        for entry in entries:
            if entry.seq > self._published:
                self._handed[entry.seq] = messages.posted_fields(entry)
        self._wake.set()

    async def run(self) -> None:
        """Wait for the lease, then publish until cancelled (or the lease is lost)."""
        async with lease.held(self._db.engine, LEASE) as held:
            await held.guard(self._publish())

    async def _publish(self) -> None:
        async with self._db.connect() as conn:
            self._published = self._saved = await store.published_seq(conn)
        failures, wait = 0, self._poll
        try:
            while True:
                self._wake.clear()
                try:
                    sent = await self.publish_once()
                    if self._unsaved() and (not sent or self._save_due()):
                        await self._save()
                    failures = 0
                except Exception:
                    failures += 1
                    metrics.outbox_publish_errors.inc()
                    log.exception("posted events not published; will retry")
                    await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                    continue
                if sent >= self._batch or self._next_handed():
                    continue
                wait = self._poll if sent else min(self._idle_poll, wait * 2)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(wait, SAVE_EVERY) if self._unsaved() else wait):
                        await self._wake.wait()
                if self._wake.is_set():
                    wait = self._poll
        finally:
            self._published = None
            self._handed.clear()

    def _next_handed(self) -> bool:
        return self._published is not None and self._published + 1 in self._handed

    def _unsaved(self) -> bool:
        return self._published is not None and self._published > self._saved

    def _save_due(self) -> bool:
        return time.monotonic() - self._saved_at >= SAVE_EVERY

    async def _save(self) -> None:
        """Store the cursor. Until then a crash only sends its events again."""
        published = self._published
        assert published is not None
        async with self._db.transaction() as tx:
            await store.set_published_seq(tx, published)
        self._saved, self._saved_at = published, time.monotonic()

    async def publish_once(self) -> int:
        """Publish the entries after the cursor (at most a batch), in order, and move the
        cursor past them once the broker has confirmed them (stored by ``_save``, at most
        every ``SAVE_EVERY`` while events flow, and as soon as none is waiting); returns how
        many."""
        assert self._published is not None, "publish_once runs under the lease"
        entries = self._take_handed()
        if not entries:
            async with self._db.connect() as conn:
                entries = await store.journal_columns(
                    conn, messages.POSTED_FIELDS, self._published, self._batch
                )
        if not entries:
            return 0
        await self._bus.publish([event(e) for e in entries])
        last = entries[-1][_SEQ]
        self._published = last
        for seq in [s for s in self._handed if s <= last]:
            del self._handed[seq]
        metrics.outbox_published.labels(messages.POSTED).inc(len(entries))
        return len(entries)

    def _take_handed(self) -> list[Posted]:
        """The handed-over entries that come next after the cursor, in order."""
        assert self._published is not None
        taken: list[Posted] = []
        seq = self._published + 1
        while len(taken) < self._batch and (entry := self._handed.pop(seq, None)) is not None:
            taken.append(entry)
            seq += 1
        return taken
