"""Idempotent consumers: dedup by message id (inbox), effect and inbox row in one transaction,
ack after commit, bounded retries with exponential backoff and jitter, then dead letters.

A handler gets the open transaction and the batch's new deliveries, and answers, per
delivery, None (done) or why it is rejected (bad JSON, wrong schema: retrying cannot help), and
the rejected go to the dead letters at once. Handlers that prefer one message at a time raise
``Rejected`` and are wrapped with ``one_by_one``. Any exception is retried, one message per
transaction; after the last attempt the message is dead-lettered with the error. Side effects
outside the database must be idempotent and happen before the handler returns (the commit,
which records the messages as done, comes last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.messaging import deadletters, outbox
from paycore.platform.messaging.bus import (
    CORRELATION_ID,
    CREATED_AT,
    Bus,
    Delivery,
    Envelope,
    Subscription,
)
from paycore.platform.observability import metrics
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.bulk import insert_new
from paycore.platform.persistence.db import UtcDateTime, metadata

log = logging.getLogger(__name__)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("processed_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("consumer", "message_id"),
)
Handler = Callable[[AsyncConnection, Delivery], Awaitable[None]]
Verdicts = Sequence[str | None]
BatchHandler = Callable[[AsyncConnection, Sequence[Delivery]], Awaitable[Verdicts]]
"""Handles new (never seen) deliveries in the caller's transaction and returns, for each, None
(done) or the reason it is rejected (it becomes a dead letter). Raising means "try again"."""


class Rejected(Exception):
    """The message is malformed or violates a rule: retrying cannot help."""


def one_by_one(handler: Handler) -> BatchHandler:
    """A batch handler from a per-message one: each message in its own savepoint, so a
    ``Rejected`` message leaves no trace but its dead letter."""

    async def handle(conn: AsyncConnection, deliveries: Sequence[Delivery]) -> Verdicts:
        verdicts: list[str | None] = []
        for delivery in deliveries:
            savepoint = await conn.begin_nested()
            token = correlation_id.set(delivery.headers.get(CORRELATION_ID, delivery.id))
            try:
                await handler(conn, delivery)
            except Rejected as exc:
                await savepoint.rollback()
                verdicts.append(str(exc) or type(exc).__name__)
                continue
            finally:
                correlation_id.reset(token)
            await savepoint.commit()
            verdicts.append(None)
        return verdicts

    return handle


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 0.1
    max_seconds: float = 5.0

    def delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given (1-based) failed attempt."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class Consumer:
    """Runs one subscription: decode, dedup, handle, commit, ack."""

    def __init__(
        self,
        *,
        subscription: Subscription,
        handler: BatchHandler,
        engine: AsyncEngine,
        bus: Bus,
        retry: RetryPolicy | None = None,
        after_commit: Callable[[], None] | None = None,
        on_enqueued: Callable[[list[Envelope]], None] | None = None,
        linger_seconds: float = 0.0,
    ) -> None:
        """``after_commit`` runs after every handled batch; ``on_enqueued`` (the outbox
        relay's ``handoff``) gets the events a transaction wrote, once it has committed.
        After a batch smaller than the subscription's, the consumer waits ``linger_seconds``
        before taking the next (its acknowledgement waits too): what arrives meanwhile comes
        as one batch, one transaction, instead of many small ones."""
        self.subscription = subscription
        self.name = subscription.queue_name
        self._handler = handler
        self._engine = engine
        self._bus = bus
        self._retry = retry or RetryPolicy()
        self._after_commit = after_commit
        self._on_enqueued = on_enqueued
        self._linger = linger_seconds

    async def run(self) -> None:
        """Consume until the bus is closed."""
        await self._bus.subscribe(self.subscription, self.handle_batch)

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Handle a batch in one transaction; on any unexpected error fall back to one
        transaction per message (with retries) so a single failure does not hold back the
        others."""
        started = time.perf_counter()
        try:
            await self._handle(deliveries, attempt=None)
        except Exception:
            log.warning("batch failed, handling one by one", exc_info=True)
            for delivery in deliveries:
                await self._handle_alone(delivery)
        metrics.consume_latency.labels(self.subscription.topic, self.name).observe(
            time.perf_counter() - started
        )
        if self._after_commit:
            self._after_commit()
        if self._linger and len(deliveries) < self.subscription.batch:
            await asyncio.sleep(self._linger)

    def _transaction(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return outbox.transaction(self._engine, self._on_enqueued)

    async def _handle(self, deliveries: Sequence[Delivery], attempt: int | None) -> None:
        """Claim the new ids, handle them, dead-letter the rejected: one commit."""
        async with self._transaction() as conn:
            fresh = await self._claim(conn, [d.id for d in deliveries])
            todo: dict[str, Delivery] = {}
            for delivery in deliveries:
                if delivery.id in fresh:
                    todo.setdefault(delivery.id, delivery)
            verdicts = await self._handler_with_context(conn, list(todo.values())) if todo else []
            for delivery, reason in zip(todo.values(), verdicts, strict=True):
                if reason is not None:
                    await self._dead_letter(conn, delivery, reason, attempt or delivery.attempt)
        outcomes = ["duplicate"] * (len(deliveries) - len(todo))
        outcomes += ["ok" if v is None else "dead_letter" for v in verdicts]
        self._count(outcomes)

    async def _handler_with_context(
        self, conn: AsyncConnection, deliveries: list[Delivery]
    ) -> Verdicts:
        """Run the handler (in the correlation id of the batch's first message; ``one_by_one``
        sets each message's own) and record the consumer lag of the newest one."""
        newest = deliveries[-1].headers.get(CREATED_AT, "")
        if newest.isdigit():
            lag = max(0.0, time.time() - int(newest) / 1000)
            metrics.consumer_lag.labels(self.subscription.topic, self.name).set(lag)
        first = deliveries[0]
        token = correlation_id.set(first.headers.get(CORRELATION_ID, first.id))
        try:
            verdicts = await self._handler(conn, deliveries)
        finally:
            correlation_id.reset(token)
        if len(verdicts) != len(deliveries):
            raise RuntimeError("a batch handler must return one verdict per delivery")
        return verdicts

    async def _handle_alone(self, delivery: Delivery) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._handle([delivery], attempt)
                return
            except Exception as exc:
                if attempt >= self._retry.max_attempts:
                    log.exception("giving up on message", extra={"message_id": delivery.id})
                    await self._dead_letter_alone(delivery, f"{type(exc).__name__}: {exc}", attempt)
                    return
                delay = self._retry.delay(attempt)
                log.warning(
                    "message failed, retrying",
                    extra={"message_id": delivery.id, "attempt": attempt, "delay": delay},
                )
                await asyncio.sleep(delay)

    async def _dead_letter_alone(self, delivery: Delivery, error: str, attempts: int) -> None:
        async with self._transaction() as conn:
            if await self._claim(conn, [delivery.id]):
                await self._dead_letter(conn, delivery, error, attempts)
        self._count(["dead_letter"])

    async def _dead_letter(
        self, conn: AsyncConnection, delivery: Delivery, error: str, attempts: int
    ) -> None:
        log.warning(
            "dead-lettered",
            extra={"topic": delivery.topic, "message_id": delivery.id, "error": error},
        )
        await deadletters.record(conn, delivery, consumer=self.name, error=error, attempts=attempts)
        metrics.dead_letters.labels(delivery.topic, self.name).inc()

    async def _claim(self, conn: AsyncConnection, message_ids: list[str]) -> set[str]:
        """Record the ids in the inbox and return those not recorded before. One INSERT … ON
        CONFLICT DO NOTHING: the primary key decides, so the cost does not grow with the inbox
        (a ``message_id IN (…)`` read was planned as a scan of the consumer's whole inbox while
        the table's statistics were stale), and a concurrent redelivery waits for the first
        transaction instead of failing on the key. Rolled back with the batch if it fails."""
        now = utcnow()
        rows = [(self.name, i, now) for i in dict.fromkeys(message_ids)]
        columns = ("consumer", "message_id", "processed_at")
        keys = ("consumer", "message_id")
        claimed = await insert_new(conn, inbox, keys, columns, rows, returning=("message_id",))
        return {message_id for (message_id,) in claimed}

    def _count(self, outcomes: list[str]) -> None:
        for outcome in outcomes:
            metrics.consumed.labels(self.subscription.topic, self.name, outcome).inc()
