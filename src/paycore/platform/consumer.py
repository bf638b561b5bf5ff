"""Idempotent consumers: dedup by message id (inbox), effect and inbox row in one transaction,
ack after commit, bounded retries with exponential backoff and jitter, then dead letters.

A handler gets the open transaction and one delivery. It raises ``Rejected`` for a message
that can never succeed (bad JSON, wrong schema): that goes to the dead letters at once. Any
other exception is retried; after the last attempt the message is dead-lettered with the
error. Side effects outside the database must be idempotent and happen before the handler
returns (the commit, which records the message as done, comes last).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.platform import deadletters, metrics
from paycore.platform.bus import CORRELATION_ID, CREATED_AT, Bus, Delivery, Subscription
from paycore.platform.clock import utcnow
from paycore.platform.db import UtcDateTime, metadata
from paycore.platform.logging import correlation_id

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


class Rejected(Exception):
    """The message is malformed or violates a rule: retrying cannot help."""


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
        handler: Handler,
        engine: AsyncEngine,
        bus: Bus,
        retry: RetryPolicy | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.subscription = subscription
        self.name = subscription.queue_name
        self._handler = handler
        self._engine = engine
        self._bus = bus
        self._retry = retry or RetryPolicy()
        self._after_commit = after_commit

    async def run(self) -> None:
        """Consume until the bus is closed."""
        await self._bus.subscribe(self.subscription, self.handle_batch)

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Handle a batch in one transaction; on any unexpected error fall back to one
        transaction per message so a single failure does not hold back the others."""
        started = time.perf_counter()
        try:
            await self._handle_together(deliveries)
        except Exception:
            log.warning("batch failed, handling one by one", exc_info=True)
            for delivery in deliveries:
                await self._handle_alone(delivery)
        metrics.consume_latency.labels(self.subscription.topic, self.name).observe(
            time.perf_counter() - started
        )
        if self._after_commit:
            self._after_commit()

    async def _handle_together(self, deliveries: Sequence[Delivery]) -> None:
        async with self._engine.begin() as conn:
            seen = await self._already_done(conn, [d.id for d in deliveries])
            outcomes = []
            for delivery in deliveries:
                if delivery.id in seen:
                    outcomes.append("duplicate")
                    continue
                seen.add(delivery.id)
                outcomes.append(await self._apply_or_reject(conn, delivery, delivery.attempt))
        self._count(outcomes)

    async def _handle_alone(self, delivery: Delivery) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._engine.begin() as conn:
                    if await self._already_done(conn, [delivery.id]):
                        outcome = "duplicate"
                    else:
                        outcome = await self._apply_or_reject(conn, delivery, attempt)
                self._count([outcome])
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

    async def _apply_or_reject(
        self, conn: AsyncConnection, delivery: Delivery, attempt: int
    ) -> str:
        """Apply inside a savepoint; a rejection rolls the savepoint back and dead-letters."""
        savepoint = await conn.begin_nested()
        try:
            await self._apply(conn, delivery)
        except Rejected as exc:
            await savepoint.rollback()
            await self._dead_letter(conn, delivery, str(exc), attempt)
            return "dead_letter"
        await savepoint.commit()
        return "ok"

    async def _apply(self, conn: AsyncConnection, delivery: Delivery) -> None:
        created = delivery.headers.get(CREATED_AT, "")
        if created.isdigit():
            lag = time.time() - int(created) / 1000
            metrics.consumer_lag.labels(self.subscription.topic, self.name).set(max(0.0, lag))
        token = correlation_id.set(delivery.headers.get(CORRELATION_ID, delivery.id))
        try:
            await self._handler(conn, delivery)
            await self._mark_done(conn, delivery.id)
        finally:
            correlation_id.reset(token)

    async def _dead_letter_alone(self, delivery: Delivery, error: str, attempts: int) -> None:
        async with self._engine.begin() as conn:
            if not await self._already_done(conn, [delivery.id]):
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
        await self._mark_done(conn, delivery.id)
        metrics.dead_letters.labels(delivery.topic, self.name).inc()

    async def _already_done(self, conn: AsyncConnection, ids: list[str]) -> set[str]:
        rows = await conn.execute(
            select(inbox.c.message_id).where(
                inbox.c.consumer == self.name, inbox.c.message_id.in_(ids)
            )
        )
        return {r[0] for r in rows}

    async def _mark_done(self, conn: AsyncConnection, message_id: str) -> None:
        await conn.execute(
            insert(inbox).values(consumer=self.name, message_id=message_id, processed_at=utcnow())
        )

    def _count(self, outcomes: list[str]) -> None:
        for outcome in outcomes:
            metrics.consumed.labels(self.subscription.topic, self.name, outcome).inc()
