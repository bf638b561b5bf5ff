"""Holds whose timeout ran out, released by the ledger worker: an ``expire`` entry each, at
most one poll after the time stated. A hold is released once whoever tries (the journal's
unique ``pending_id``); a post or void after its time is refused even before the release is
written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from paycore.banking import metrics, service
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store as ledger_store
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database

log = logging.getLogger(__name__)

BATCH = 500
GAUGE_SECONDS = 5.0
"""How often the worker looks at what is held (``paycore_banking_held_cents``)."""
MARGIN = timedelta(minutes=1)
"""How far back each poll looks, beyond the last one: a hold written by a process whose clock
is behind this one's still falls in the window."""


class Expiry:
    def __init__(
        self, db: Database, *, poll_seconds: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._poll = poll_seconds
        self._clock = clock

    async def run(self) -> None:
        since: datetime | None = None  # the first pass looks at every hold
        looked: float | None = None  # when the held amount was last looked at
        while True:
            now = self._clock()
            released, full = await self.once(since, now)
            if released:
                log.info("holds expired", extra={"holds": released})
            if looked is None or asyncio.get_running_loop().time() - looked >= GAUGE_SECONDS:
                looked = asyncio.get_running_loop().time()
                async with self._db.connect() as conn:
                    metrics.held.set(await ledger_store.held_total(conn))
            if not full:
                since = now - MARGIN
                await asyncio.sleep(self._poll)

    async def once(self, since: datetime | None, now: datetime) -> tuple[int, bool]:
        """Release the holds due by ``now`` (from ``since`` on); how many, and whether there
        may be more than one pass takes."""
        async with self._db.connect() as conn:
            due = await ledger_store.due_holds(conn, since, now, BATCH)
        if not due:
            return 0, False
        async with self._db.transaction() as tx:
            applied = await ledger.expire(tx, due, now)
            service.counted(tx, applied.outcomes)
        return len(applied.outcomes), len(due) == BATCH
