"""Payments use cases: accept (durable on the broker before the answer), the worker's
dispatcher that gets each payment stored by exactly one processor, the health poller, and the
summary.

The dispatcher is the only writer of pins: one payments worker per deployment dispatches (a
lease in the database keeps a second one waiting until the first is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.payments import messages, metrics, store
from paycore.payments.domain import PROCESSORS, Outcome, Payment, Router, Totals
from paycore.payments.processors import Health
from paycore.payments.store import Pending
from paycore.platform.messaging.bus import Bus, Envelope
from paycore.platform.observability import tracing
from paycore.platform.persistence.uow import Database

log = logging.getLogger(__name__)


class Payer(Protocol):
    name: str

    async def pay(
        self, correlation_id: str, amount_cents: int, requested_at_ms: int, *, timeout: float
    ) -> tuple[Outcome, int]: ...

    async def health(self, *, timeout: float = 2.0) -> Health | None: ...


async def accept(bus: Bus, payment: Payment) -> None:
    """Hand the payment to the broker; returns once the broker has stored it durably. The
    correlationId is the message id, so a payment posted twice is processed once."""
    body = messages.encode(payment, _now_ms())
    traceparent = tracing.header()  # the request's hop: the worker's batch continues its trace
    headers = {tracing.TRACEPARENT: traceparent} if traceparent else {}
    await bus.publish(
        [
            Envelope(
                messages.TOPIC,
                body,
                id=payment.correlation_id,
                key=payment.correlation_id,
                headers=headers,
            )
        ]
    )


async def summary(
    conn: AsyncConnection, start_ms: int | None, end_ms: int | None
) -> dict[str, Totals]:
    """The Rinha summary: per processor, payments stored there and their total, exact."""
    found = await store.totals(conn, start_ms, end_ms)
    return {name: found.get(name, Totals()) for name in PROCESSORS}


async def purge(db: Database) -> None:
    async with db.transaction() as tx:
        await store.purge(tx)


class Dispatcher:
    """Sends every received payment to a processor until one holds it, counting it then.

    Each round takes the waiting payments, pins the unpinned ones to the processor the router
    chooses (one UPDATE, committed before any call, with the ``requestedAt`` to send), and
    calls the processors concurrently (at most ``max_in_flight`` calls). Stored payments are
    marked processed in batches; refused ones are unpinned and routed again; unknown ones are
    asked of the same processor again after a backoff. Payments wait while no processor is
    available."""

    def __init__(
        self,
        db: Database,
        payers: Mapping[str, Payer],
        router: Router,
        *,
        max_in_flight: int = 1000,
        batch: int = 500,
    ) -> None:
        self._db = db
        self._payers = payers
        self.router = router
        self._batch = batch
        self._slots = asyncio.Semaphore(max_in_flight)
        self._ready: deque[Pending] = deque()
        self._known: set[str] = set()
        self._wake = asyncio.Event()
        self._stored: list[str] = []
        self._stored_wake = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._started: dict[str, dict[str, float]] = {name: {} for name in payers}

    @property
    def waiting(self) -> int:
        """Payments received and not yet stored by a processor."""
        return len(self._known)

    def add(self, pending: Iterable[Pending]) -> None:
        """Queue payments (newly received, or found unfinished at start); duplicates ignored."""
        for item in pending:
            if item.correlation_id not in self._known:
                self._known.add(item.correlation_id)
                self._ready.append(item)
        self._wake.set()

    def nudge(self) -> None:
        """Something changed (a processor's health): look at the waiting payments again."""
        self._wake.set()

    async def recover(self) -> int:
        """Queue every payment a previous worker left unfinished."""
        async with self._db.connect() as conn:
            found = await store.unfinished(conn)
        self.add(found)
        return len(found)

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_stored(), name="payments-stored")
        try:
            while True:
                await self._round()
        finally:
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) for the calls in flight and record what they stored."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._calls:
                    await asyncio.gather(*list(self._calls), return_exceptions=True)
        await self._flush_stored()

    async def _round(self) -> None:
        if not self._ready:
            self._wake.clear()
            await self._wake.wait()
        now = time.monotonic()
        for name, started in self._started.items():
            oldest = next(iter(started.values()), now)
            self.router.states[name].oldest_call_ms = int((now - oldest) * 1000)
        target = self.router.choose(now)
        sendable: list[Pending] = []
        to_pin: list[Pending] = []
        held: list[Pending] = []
        while self._ready and len(sendable) + len(to_pin) < self._batch:
            item = self._ready.popleft()
            if item.processor is None:
                (to_pin if target is not None else held).append(item)
            elif self.router.may_ask(item.processor, now):
                sendable.append(item)
            else:
                held.append(item)
        if to_pin and target is not None:
            sendable += await self._pin(to_pin, target)
        self._ready.extendleft(reversed(held))
        for item in sendable:
            await self._slots.acquire()
            task = asyncio.create_task(self._call(item))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        if held and not sendable:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await self._wake.wait()

    async def _pin(self, items: list[Pending], target: str) -> list[Pending]:
        """Pin payments to ``target`` with one ``requestedAt``; returns those still to do."""
        at = _now_ms()
        async with self._db.transaction() as tx:
            pinned = await store.pin(tx, [i.correlation_id for i in items], target, at)
        kept = []
        for item in items:
            if item.correlation_id in pinned:
                item.processor, item.requested_at_ms, item.attempt = target, at, 0
                kept.append(item)
            else:  # purged, or not committed by the consumer after all: nothing to send
                self._known.discard(item.correlation_id)
        return kept

    async def _call(self, item: Pending) -> None:
        assert item.processor is not None
        assert item.requested_at_ms is not None
        name = item.processor
        self._started[name][item.correlation_id] = time.monotonic()
        try:
            item.attempt += 1
            outcome, elapsed = await self._payers[name].pay(
                item.correlation_id,
                item.amount_cents,
                item.requested_at_ms,
                timeout=self.router.timeout_seconds(name, item.attempt),
            )
            self.router.record(name, outcome, elapsed)
            metrics.processor_calls.labels(name, outcome.value).inc()
            if outcome is Outcome.STORED:
                self._stored.append(item.correlation_id)
                self._stored_wake.set()
                return
            if outcome is Outcome.REFUSED:
                item.processor = item.requested_at_ms = None
                self._requeue(item, 0.0)
            else:
                self._requeue(item, min(0.05 * 2**item.attempt, 2.0))
        except Exception:
            log.exception("payment call failed", extra={"correlation_id": item.correlation_id})
            self._requeue(item, 1.0)
        finally:
            self._started[name].pop(item.correlation_id, None)
            self._slots.release()

    def _requeue(self, item: Pending, delay: float) -> None:
        def back() -> None:
            self._ready.append(item)
            self._wake.set()

        if delay <= 0:
            back()
        else:
            asyncio.get_running_loop().call_later(delay, back)

    async def _record_stored(self) -> None:
        while True:
            await self._stored_wake.wait()
            self._stored_wake.clear()
            try:
                await self._flush_stored()
            except Exception:
                log.exception("could not record stored payments; retrying")
                await asyncio.sleep(0.5)
                self._stored_wake.set()

    async def _flush_stored(self) -> None:
        done, self._stored = self._stored, []
        if not done:
            return
        try:
            async with self._db.transaction() as tx:
                await store.mark_processed(tx, done)
        except BaseException:
            self._stored = done + self._stored
            raise
        self._known.difference_update(done)
        metrics.payments_processed.inc(len(done))


class Lease:
    """Only one dispatcher may run per deployment (two could pin one payment to different
    processors). The worker waits for this lease before it starts, renews it, and gives it back
    when it stops; ``on_lost`` runs if it cannot be renewed in time (the process should stop)."""

    def __init__(
        self, db: Database, holder: str, *, ttl: float = 6.0, on_lost: Callable[[], None]
    ) -> None:
        self._db = db
        self.holder = holder
        self._ttl_ms = int(ttl * 1000)
        self._on_lost = on_lost

    async def _claim(self) -> bool:
        async with self._db.transaction() as tx:
            return await store.claim_lease(tx, self.holder, _now_ms(), self._ttl_ms)

    async def acquire(self) -> None:
        waited = False
        while not await self._claim():
            if not waited:
                log.warning("another payments worker holds the lease; waiting for it")
                waited = True
            await asyncio.sleep(self._ttl_ms / 4000)

    async def keep(self) -> None:
        """Renew every third of the lease; losing it (or failing to renew it until it would
        expire) calls ``on_lost`` once."""
        expires = time.monotonic() + self._ttl_ms / 1000
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                if await self._claim():
                    expires = time.monotonic() + self._ttl_ms / 1000
                    continue
                log.critical("the payments lease was taken over")
            except Exception:
                log.exception("could not renew the payments lease")
                if time.monotonic() < expires - self._ttl_ms / 3000:
                    continue
            self._on_lost()
            return

    async def release(self) -> None:
        async with self._db.transaction() as tx:
            await store.release_lease(tx, self.holder)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def poll_health(
    payers: Mapping[str, Payer], router: Router, dispatcher: Dispatcher, *, every: float
) -> None:
    """The deployment's only health poller: each processor once per ``every`` seconds. It waits
    one interval before its first call: the worker it took over from (or its own crashed poller)
    may have just asked, and the processors allow one call per 5 seconds in total. Until then
    the calls themselves inform the router."""
    while True:
        await asyncio.sleep(every)
        reports = await asyncio.gather(*(p.health() for p in payers.values()))
        for name, report in zip(payers, reports, strict=True):
            if report is not None:
                router.states[name].on_health(report.failing, report.min_response_ms)
                metrics.processor_failing.labels(name).set(int(report.failing))
                metrics.processor_latency.labels(name).set(report.min_response_ms / 1000)
        dispatcher.nudge()
