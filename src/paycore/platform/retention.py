"""Housekeeping: consumer inbox entries and idempotency keys are kept for a while, then
deleted, so neither table grows without bound. Redeliveries and client retries happen within
minutes; the defaults keep a week of inbox and a day of idempotency keys. The dead letters of a
topic with a retention (card data) are deleted once older than it, replayed or not; those of
other topics stay until an operator deals with them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete

from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Retention
from paycore.platform.messaging.consumer import inbox
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.fencing import effects
from paycore.platform.persistence.uow import Database
from paycore.platform.web.claims import idempotency_keys

log = logging.getLogger(__name__)


async def prune(
    db: Database,
    *,
    inbox_for: timedelta,
    keys_for: timedelta,
    topics: Retention | None = None,
) -> tuple[int, int, int]:
    """Delete inbox entries, idempotency keys (and their effect rows) and the dead letters of
    the ``topics`` (seconds each keeps its messages) older than their retention; returns how
    many inbox entries, keys and dead letters."""
    now = utcnow()
    letters = 0
    async with db.transaction() as tx:
        old_inbox = await tx.execute(delete(inbox).where(inbox.c.processed_at < now - inbox_for))
        old_keys = await tx.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < now - keys_for)
        )
        await tx.execute(delete(effects).where(effects.c.committed_at < now - keys_for))
        for topic, seconds in (topics or {}).items():
            old_letters = await tx.execute(
                delete(dead_letters).where(
                    dead_letters.c.topic == topic,
                    dead_letters.c.created_at < now - timedelta(seconds=seconds),
                )
            )
            letters += old_letters.rowcount
    return old_inbox.rowcount, old_keys.rowcount, letters


async def run(
    db: Database,
    *,
    inbox_for: timedelta,
    keys_for: timedelta,
    topics: Retention | None = None,
    every_seconds: float = 3600,
) -> None:
    """Prune now and then every ``every_seconds``, until cancelled."""
    while True:
        removed = await prune(db, inbox_for=inbox_for, keys_for=keys_for, topics=topics)
        if any(removed):
            log.info(
                "pruned",
                extra={
                    "inbox": removed[0],
                    "idempotency_keys": removed[1],
                    "dead_letters": removed[2],
                },
            )
        await asyncio.sleep(every_seconds)
