"""The live feed of one account for the dashboard's server-sent events.

The process serving a dashboard is usually not the one that applied a result, so the feed
tails the database: every ``poll_seconds`` one indexed query (account, ``updated_at``) returns
the account's transactions created or decided since the last look. Commits do not land in
``updated_at`` order (several writers, their clocks), so each look reaches back ``overlap``
seconds and changes already sent are skipped by ``(id, status)``.

Each look costs a query, so an account holds at most a few streams at once (:class:`Slots`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.gateway import store
from paycore.platform.persistence.db import AnyRow

MAX_ROWS = 2_000


class Resync(Exception):
    """More changes arrived than one look can carry: the client should reload."""


class Slots:
    """Open streams per account in this process, at most ``limit`` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def take(self, account_id: str) -> bool:
        """Hold one slot of the account, if one is free."""
        if self._open[account_id] >= self.limit:
            return False
        self._open[account_id] += 1
        return True

    def release(self, account_id: str) -> None:
        self._open[account_id] -= 1
        if self._open[account_id] <= 0:
            del self._open[account_id]

    def held(self, account_id: str) -> int:
        return self._open[account_id]


async def changes(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    account_id: str,
    since: datetime,
    *,
    poll_seconds: float,
    overlap: timedelta = timedelta(seconds=2),
) -> AsyncGenerator[list[AnyRow], None]:
    """Yield lists of the account's changed transactions (oldest change first), forever;
    an empty list when nothing changed (a chance to send a keep-alive). Raises
    :class:`Resync` after a look that hit ``MAX_ROWS``."""
    mark = since
    sent: dict[tuple[str, str], datetime] = {}
    while True:
        async with connect() as conn:
            rows = await store.changed_since(conn, account_id, mark - overlap, MAX_ROWS)
        fresh = [r for r in rows if (r.id, r.status) not in sent]
        for row in fresh:
            sent[(row.id, row.status)] = row.updated_at
        if rows:
            mark = max(mark, rows[-1].updated_at)
        horizon = mark - 2 * overlap  # older changes are out of every later look
        for key in [k for k, at in sent.items() if at < horizon]:
            del sent[key]
        yield fresh
        if len(rows) >= MAX_ROWS:
            raise Resync
        await asyncio.sleep(poll_seconds)


def event(name: str, data: bytes, event_id: str | None = None) -> bytes:
    """One server-sent event."""
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return head.encode() + b"data: " + data + b"\n\n"


def parse_mark(last_event_id: str | None, default: datetime) -> datetime:
    """Where a reconnecting stream resumes: the ``Last-Event-ID`` it got (an ISO timestamp)."""
    if not last_event_id:
        return default
    try:
        moment = datetime.fromisoformat(last_event_id.replace("Z", "+00:00"))
    except ValueError:
        return default
    return moment if moment.tzinfo else default


def mark_of(rows: list[AnyRow]) -> str:
    """The event id to send with a batch: its newest change time."""
    newest: datetime = max(r.updated_at for r in rows)
    return newest.isoformat()
