"""Idempotent consumers: dedup by message id (inbox), effect and inbox row in one transaction,
ack after commit, bounded retries with exponential backoff and jitter, then dead letters.

A handler gets the open unit of work (``Transaction``) and the batch's new deliveries, and
answers, per delivery, None (done) or why it is rejected (a message that does not decode, with
whatever exception: retrying cannot help, see ``decoding``), and the rejected go to the dead
letters at once. An exception the handler raises is taken as transient (the database went
away) and retried, one message per transaction; after the last attempt the message is
dead-lettered with the error.
Side effects outside the database must be idempotent and happen before the handler returns (the
commit, which records the messages as done, comes last), or be after-commit hooks of the unit
of work.

A subscription marked ``idempotent`` (the ledger's) has no inbox: its handler knows a message
it handled before by the message's own keys, which it must look up anyway (a transfer id among
the journal's entries and refusals), and which hold for good, not only for the message id a
redelivery keeps. Its dead letters are recorded once per message id all the same.

A subscription marked ``exclusive`` (the ledger's) is consumed by one process at a time: the
others wait for its lease (``persistence.lease``), so messages are handled in the order the
broker holds them however many workers run.

Each batch is a hop of the trace of its first message (``batch_trace``); a message handled
alone, after a failed batch, is a hop of its own message's trace.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table

from paycore.platform.clock import utcnow
from paycore.platform.messaging import deadletters
from paycore.platform.messaging.batch_trace import BatchTrace
from paycore.platform.messaging.bus import CORRELATION_ID, CREATED_AT, Bus, Delivery, Subscription
from paycore.platform.observability import metrics
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence import lease
from paycore.platform.persistence.db import UtcDateTime, metadata
from paycore.platform.persistence.uow import Database, Transaction

log = logging.getLogger(__name__)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("processed_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("consumer", "message_id"),
)
Verdicts = Sequence[str | None]
BatchHandler = Callable[[Transaction, Sequence[Delivery]], Awaitable[Verdicts]]
"""Handles new (never seen) deliveries in the caller's unit of work and returns, for each, None
(done) or the reason it is rejected (it becomes a dead letter). Raising means "try again"."""


@runtime_checkable
class EarlyHandler(Protocol):
    """A batch handler with work it can do for a batch before the batch's turn, while the one
    before is still being handled (on a bus that overlaps batches, ``Subscription.overlap``).
    ``early`` writes nothing (it may read, on a connection of its own); it may be cancelled at
    any await (the turn came first), and then the handler does that work in its turn."""

    async def __call__(self, tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts: ...

    async def early(self, deliveries: Sequence[Delivery]) -> None: ...


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
        db: Database,
        bus: Bus,
        retry: RetryPolicy | None = None,
        linger_seconds: float = 0.0,
    ) -> None:
        """After a batch smaller than the subscription's, the consumer waits
        ``linger_seconds`` before taking the next (its acknowledgement waits too): what
        arrives meanwhile comes as one batch, one transaction, instead of many small ones."""
        self.subscription = subscription
        self.name = subscription.queue_name
        self._handler = handler
        self._db = db
        self._bus = bus
        self._retry = retry or RetryPolicy()
        self._linger = linger_seconds
        self._last: _Turn | None = None  # the batch given last
        self._running: _Turn | None = None  # the batch whose turn it is

    async def run(self) -> None:
        """Consume until the bus is closed. An exclusive subscription is consumed by one
        process at a time: this one waits for the lease, and once it has it, for what the
        last holder left unacknowledged to be due again (it comes first, in order)."""
        if not self.subscription.exclusive:
            await self._bus.subscribe(self.subscription, self.handle_batch)
            return
        async with lease.held(self._db.engine, f"consumer:{self.name}") as held:
            await self._bus.redeliveries_due(self.subscription)
            await held.guard(self._bus.subscribe(self.subscription, self.handle_batch))

    async def handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        """Handle a batch in one transaction; on any unexpected error fall back to one
        transaction per message (with retries) so a single failure does not hold back the
        others. Batches are handled one after another in the order they are given, even when
        the bus gives the next before the last is handled (``Subscription.overlap``): the
        next waits for its turn, and meanwhile an ``EarlyHandler`` does its early part, begun
        once the handler has been called for the batch before."""
        loop = asyncio.get_running_loop()
        before, mine = self._last, _Turn(loop.create_future(), loop.create_future())
        self._last = mine
        try:
            if before is not None and not before.over.done():
                await self._wait_turn(before, deliveries)
            self._running = mine
            await self._handle_in_turn(deliveries)
        finally:
            mine.end()
            if self._running is mine:
                self._running = None
            if self._last is mine:
                self._last = None

    async def _wait_turn(self, before: _Turn, deliveries: Sequence[Delivery]) -> None:
        early = None
        if isinstance(self._handler, EarlyHandler):
            early = asyncio.ensure_future(self._early(self._handler, before, deliveries))
            early.add_done_callback(_log_early_failure)
        try:
            await asyncio.wait([before.over])  # not ``await``: a cancelled wait leaves it be
        finally:
            if early is not None:
                early.cancel()  # unless done: the turn came first, the handler does it all

    @staticmethod
    async def _early(handler: EarlyHandler, before: _Turn, deliveries: Sequence[Delivery]) -> None:
        await asyncio.wait([before.called])
        if not before.over.done():
            await handler.early(deliveries)

    async def _handle_in_turn(self, deliveries: Sequence[Delivery]) -> None:
        started = time.perf_counter()
        with BatchTrace(self.subscription, self.name, deliveries) as hop:
            try:
                await self._handle(deliveries, attempt=None)
            except Exception:
                hop.failed = True
                log.warning("batch failed, handling one by one", exc_info=True)
                for delivery in deliveries:
                    await self._handle_alone(delivery)
        metrics.consume_latency.labels(self.subscription.topic, self.name).observe(
            time.perf_counter() - started
        )
        if self._linger and len(deliveries) < self.subscription.batch:
            await asyncio.sleep(self._linger)

    async def _handle(self, deliveries: Sequence[Delivery], attempt: int | None) -> None:
        """Claim the new ids, handle them, dead-letter the rejected: one commit."""
        async with self._db.transaction() as tx:
            fresh = await self._claim(tx, [d.id for d in deliveries])
            todo: dict[str, Delivery] = {}
            for delivery in deliveries:
                if delivery.id in fresh:
                    todo.setdefault(delivery.id, delivery)
            verdicts = await self._handler_with_context(tx, list(todo.values())) if todo else []
            for delivery, reason in zip(todo.values(), verdicts, strict=True):
                if reason is not None:
                    await self._dead_letter(tx, delivery, reason, attempt or delivery.attempt)
        outcomes = ["duplicate"] * (len(deliveries) - len(todo))
        outcomes += ["ok" if v is None else "dead_letter" for v in verdicts]
        self._count(outcomes)

    async def _handler_with_context(self, tx: Transaction, deliveries: list[Delivery]) -> Verdicts:
        """Run the handler in the correlation id of the batch's first message (a message
        handled alone, after a failed batch, in its own) and record the consumer lag of the
        newest one."""
        newest = deliveries[-1].headers.get(CREATED_AT, "")
        if newest.isdigit():
            lag = max(0.0, time.time() - int(newest) / 1000)
            metrics.consumer_lag.labels(self.subscription.topic, self.name).set(lag)
        first = deliveries[0]
        token = correlation_id.set(first.headers.get(CORRELATION_ID, first.id))
        if self._running is not None:
            self._running.call()  # begun: the next batch's early part may run from now on
        try:
            verdicts = await self._handler(tx, deliveries)
        finally:
            correlation_id.reset(token)
        if len(verdicts) != len(deliveries):
            raise RuntimeError("a batch handler must return one verdict per delivery")
        return verdicts

    async def _handle_alone(self, delivery: Delivery) -> None:
        with BatchTrace(self.subscription, self.name, [delivery]) as hop:
            hop.failed = not await self._retried(delivery)

    async def _retried(self, delivery: Delivery) -> bool:
        """Handle the message alone, retried with backoff; False if it had to be
        dead-lettered after the last attempt."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._handle([delivery], attempt)
                return True
            except Exception as exc:
                if attempt >= self._retry.max_attempts:
                    log.exception("giving up on message", extra={"message_id": delivery.id})
                    await self._dead_letter_alone(delivery, f"{type(exc).__name__}: {exc}", attempt)
                    return False
                delay = self._retry.delay(attempt)
                log.warning(
                    "message failed, retrying",
                    extra={"message_id": delivery.id, "attempt": attempt, "delay": delay},
                )
                await asyncio.sleep(delay)

    async def _dead_letter_alone(self, delivery: Delivery, error: str, attempts: int) -> None:
        async with self._db.transaction() as tx:
            if await self._claim(tx, [delivery.id]):
                await self._dead_letter(tx, delivery, error, attempts)
        self._count(["dead_letter"])

    async def _dead_letter(
        self, tx: Transaction, delivery: Delivery, error: str, attempts: int
    ) -> None:
        if self.subscription.idempotent and await deadletters.recorded(
            tx, delivery, consumer=self.name
        ):
            return  # dead-lettered when it came before
        log.warning(
            "dead-lettered",
            extra={"topic": delivery.topic, "message_id": delivery.id, "error": error},
        )
        await deadletters.record(tx, delivery, consumer=self.name, error=error, attempts=attempts)
        metrics.dead_letters.labels(delivery.topic, self.name).inc()

    async def _claim(self, tx: Transaction, message_ids: list[str]) -> set[str]:
        """Record the ids in the inbox and return those not recorded before (for an
        ``idempotent`` subscription, which keeps no inbox: all of them). One INSERT … ON
        CONFLICT DO NOTHING: the primary key decides, so the cost does not grow with the inbox
        (a ``message_id IN (…)`` read was planned as a scan of the consumer's whole inbox while
        the table's statistics were stale), and a concurrent redelivery waits for the first
        transaction instead of failing on the key. Rolled back with the batch if it fails."""
        if self.subscription.idempotent:
            return set(message_ids)
        now = utcnow()
        rows = [(self.name, i, now) for i in dict.fromkeys(message_ids)]
        columns = ("consumer", "message_id", "processed_at")
        keys = ("consumer", "message_id")
        claimed = await tx.insert_new(inbox, keys, columns, rows, returning=("message_id",))
        return {message_id for (message_id,) in claimed}

    def _count(self, outcomes: list[str]) -> None:
        """Each outcome's count, added once per outcome (a ledger batch is 2,000 messages)."""
        for outcome, times in collections.Counter(outcomes).items():
            metrics.consumed.labels(self.subscription.topic, self.name, outcome).inc(times)


@dataclass(frozen=True, slots=True)
class _Turn:
    """A batch given to ``handle_batch``: whether its handler has been called, whether it is
    over (both are once it is over)."""

    called: asyncio.Future[None]
    over: asyncio.Future[None]

    def call(self) -> None:
        if not self.called.done():
            self.called.set_result(None)

    def end(self) -> None:
        self.call()
        if not self.over.done():
            self.over.set_result(None)


def _log_early_failure(early: asyncio.Future[None]) -> None:
    if not early.cancelled() and early.exception() is not None:
        log.warning(
            "a batch's early part failed; it is done in its turn", exc_info=early.exception()
        )
