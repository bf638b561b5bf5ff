"""Payments use cases: accept (durable before the answer), the dispatcher that gets each
payment stored by exactly one processor, the health poller, and the summary.

Two ways to accept (``PAYCORE_PAYMENTS_ACCEPT``): ``broker`` publishes the payment and one
payments worker per deployment records and dispatches every payment; ``local`` records it in
the database (``Recorder``, group commit) and the API instance that took it dispatches it
(ADR 0017). Either way a dispatcher is the only writer of the pins of the payments it holds:
the worker's holds all of them, an instance's those it owns, and a lease in the database keeps
a second dispatcher of the same payments waiting until the first is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import IntegrityError

from paycore.payments import messages, metrics, store
from paycore.payments.domain import PROCESSORS, Health, Outcome, Payment, Router, Totals
from paycore.payments.journal import Journal
from paycore.payments.store import Pending
from paycore.platform.messaging.bus import Bus, Envelope
from paycore.platform.observability import tracing
from paycore.platform.persistence.batch import Batch
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


class Recorder:
    """``accept=local``: payments recorded in the database by group commit (one commit and
    fsync for every payment waiting), pinned at once to the processor the router chooses (no
    pinning transaction later), each handed to this instance's dispatcher once its commit is
    done. A correlationId recorded before (by this instance or another) is taken again without
    a second row: the payment is processed once.

    With a ``journal`` the payment is appended to it and the accept returns at once; its
    commit follows (retried until it is done), and a journal left by a killed process is
    recorded by ``start`` (ADR 0021). Without one the accept returns once the commit is done."""

    RETRY_SECONDS = 1.0

    JOURNALED_LINGER = 0.025
    """Seconds the first journaled payment waits for others to be committed with it: no
    answer waits for that commit, and at the Rinha's rate a commit each cost more CPU than
    the rest of a payment's work (ADR 0022)."""

    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        *,
        owner: str,
        siblings: Sequence[Database] = (),
        journal: Journal | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._owner = owner
        self._writer = db.writer(
            self._build,
            tables=((store.payments, store.RECEIVED),),
            linger=self.JOURNALED_LINGER if journal is not None else 0.0,
        )
        self._elsewhere = [store.lookup(sibling.engine) for sibling in siblings]
        self._journal = journal
        self._journaled: set[str] = set()
        self._recording: set[asyncio.Task[None]] = set()

    def start(self) -> int:
        """Open the journal (if any) and record what a process before this one left in it;
        returns how many payments that is."""
        if self._journal is None:
            return 0
        left = self._journal.open()
        for payment, segment in left:
            self._journaled.add(payment.correlation_id)
            self._record(payment, segment)
        return len(left)

    async def accept(self, payment: Payment) -> None:
        """Returns once the payment is committed or journaled (or was already, here or at a
        sibling)."""
        for sibling in self._elsewhere:  # a client's retry sent to the other instance
            if await sibling.found([payment.correlation_id]):
                return
        if self._journal is not None:
            if payment.correlation_id not in self._journaled:
                segment = self._journal.append(payment)  # failing, no 202: the client retries
                self._journaled.add(payment.correlation_id)
                self._record(payment, segment)
            return
        try:
            await self._writer.submit(payment)
        except IntegrityError:
            return  # its row exists: the one payment, taken by whoever recorded it first

    async def stop(self, timeout: float = 5.0) -> None:
        """Commit what was accepted (for ``timeout`` seconds at most: what is left stays in the
        journal for the next start), then close the journal and the connections."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._recording:
                    await asyncio.gather(*list(self._recording), return_exceptions=True)
        for task in list(self._recording):
            task.cancel()
        await asyncio.gather(*list(self._recording), return_exceptions=True)
        await self._writer.stop()
        if self._journal is not None:
            self._journal.close()
        for sibling in self._elsewhere:
            await sibling.close()

    def _record(self, payment: Payment, segment: int) -> None:
        task = asyncio.create_task(self._commit(payment, segment))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _commit(self, payment: Payment, segment: int) -> None:
        """Commit a journaled payment, however long that takes: it was answered 202."""
        assert self._journal is not None
        while True:
            try:
                await self._writer.submit(payment)
            except IntegrityError:
                pass  # recorded before: by the process before this one, or posted again
            except Exception:
                log.exception(
                    "could not record a journaled payment; retrying",
                    extra={"correlation_id": payment.correlation_id},
                )
                await asyncio.sleep(self.RETRY_SECONDS)
                continue
            break
        self._journaled.discard(payment.correlation_id)
        self._journal.committed(segment)

    def _build(self, items: Sequence[Payment], ids: Sequence[int], batch: Batch) -> list[None]:
        at = _now_ms()
        target = self._dispatcher.router.choose()
        requested_at = at if target is not None else None
        pending = [Pending(p.correlation_id, p.amount_cents, target, requested_at) for p in items]
        batch.add(
            store.payments,
            [
                {
                    "correlation_id": p.correlation_id,
                    "amount_cents": p.amount_cents,
                    "received_at_ms": at,
                    "processed": False,
                    "owner": self._owner,
                    "processor": target,
                    "requested_at_ms": requested_at,
                }
                for p in items
            ],
        )
        batch.after_commit(lambda: self._dispatcher.add(pending))
        return [None] * len(items)


@dataclass(frozen=True)
class Databases:
    """Where the deployment's payments are, as one instance sees them: its own database
    first, then its siblings' where each instance has one of its own (``accept=local`` with
    ``PAYCORE_PAYMENTS_SIBLINGS``: no write lock shared between instances); else its own
    alone (one database for all)."""

    own: Database
    siblings: tuple[Database, ...] = ()

    @property
    def every(self) -> tuple[Database, ...]:
        return (self.own, *self.siblings)

    @property
    def coordinator(self) -> Database:
        """The database every instance names first (by URL): where the deployment's shared
        leases are held."""
        return min(self.every, key=lambda db: db.engine.url.render_as_string())


async def summary(
    databases: Databases, start_ms: int | None, end_ms: int | None
) -> dict[str, Totals]:
    """The Rinha summary: per processor, payments stored there and their total, exact (over
    every instance's database)."""
    found: dict[str, Totals] = {name: Totals() for name in PROCESSORS}
    for db in databases.every:
        async with db.connect() as conn:
            for name, totals in (await store.totals(conn, start_ms, end_ms)).items():
                before = found.get(name, Totals())
                found[name] = Totals(
                    before.requests + totals.requests, before.amount_cents + totals.amount_cents
                )
    return found


async def purge(databases: Databases) -> None:
    for db in databases.every:
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

    MARK_LINGER = 0.01
    """Seconds the first stored payment waits for others to be recorded with it: one write
    transaction (and fsync) for every answer arriving meanwhile, not one each (the summary
    checks end seconds before now)."""

    SPREAD = 16
    """Calls started between two turns of the event loop: a backlog sent at once (a processor
    back from a failure) would otherwise hold the loop, and the requests it serves, for all of
    them (in the API process, with ``accept=local``)."""

    def __init__(
        self,
        db: Database,
        payers: Mapping[str, Payer],
        router: Router,
        *,
        max_in_flight: int = 1000,
        batch: int = 500,
        owner: str | None = None,
    ) -> None:
        self._db = db
        self._marks = store.processed_marks(db.engine)
        self.payers = payers
        self.router = router
        self._owner = owner
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
        """Queue every payment (of this dispatcher's owner) a previous one left unfinished."""
        async with self._db.connect() as conn:
            found = await store.unfinished(conn, self._owner)
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
        try:
            await self._flush_stored()
        finally:
            await self._marks.close()

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
        for n, item in enumerate(sendable, start=1):
            await self._slots.acquire()
            task = asyncio.create_task(self._call(item))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
            if n % self.SPREAD == 0:
                await asyncio.sleep(0)  # let the loop serve its sockets between the sends
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
            outcome, elapsed = await self.payers[name].pay(
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
            await asyncio.sleep(self.MARK_LINGER)  # the answers arriving meanwhile: one commit
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
            await self._marks(done)
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
        self,
        db: Database,
        holder: str,
        *,
        role: str = store.DISPATCHER,
        ttl: float = 6.0,
        on_lost: Callable[[], None],
    ) -> None:
        self._db = db
        self.holder = holder
        self.role = role
        self._ttl_ms = int(ttl * 1000)
        self._on_lost = on_lost

    async def _claim(self) -> bool:
        async with self._db.transaction() as tx:
            return await store.claim_lease(tx, self.holder, _now_ms(), self._ttl_ms, self.role)

    async def acquire(self) -> None:
        waited = False
        while not await self._claim():
            if not waited:
                log.warning(
                    "another payments dispatcher holds the lease; waiting for it",
                    extra={"role": self.role},
                )
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
            await store.release_lease(tx, self.holder, self.role)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def poll_health(dispatcher: Dispatcher, *, every: float) -> None:
    """The deployment's only health poller: each processor once per ``every`` seconds. It waits
    one interval before its first call: the worker it took over from (or its own crashed poller)
    may have just asked, and the processors allow one call per 5 seconds in total. Until then
    the calls themselves inform the router."""
    while True:
        await asyncio.sleep(every)
        for name, report in (await _ask_health(dispatcher.payers)).items():
            _heard(dispatcher.router, name, report)
        dispatcher.nudge()


async def share_health(
    databases: Databases, holder: str, dispatcher: Dispatcher, *, every: float, tick: float = 1.0
) -> None:
    """``accept=local``'s health poller: every instance's router hears the processors'
    reports, but one instance at a time (the holder of the ``health-poller`` lease) asks for
    them, no more than once per ``every`` seconds counting its predecessor's calls, and shares
    them in every instance's database; each reads them from its own every ``tick`` seconds.
    The lease is held in the deployment's coordinator database, and asked for only when the
    reports are due (the holder renews it with each call): a write a second per instance
    would otherwise be most of an idle instance's work."""
    heard: dict[str, int] = {}
    asked_at = 0
    while True:
        await asyncio.sleep(tick)
        now = _now_ms()
        async with databases.own.connect() as conn:
            shared = await store.last_health(conn)
        last = max([asked_at, *(at for _, at in shared.values())])
        if now - last >= every * 1000 and await _poller(databases, holder, now, every):
            asked_at = now
            reports = await _ask_health(dispatcher.payers)
            for db in databases.every:
                async with db.transaction() as tx:
                    await store.save_health(tx, reports, now)
            shared.update({name: (report, now) for name, report in reports.items()})
        fresh = {name: seen for name, seen in shared.items() if heard.get(name) != seen[1]}
        for name, (report, at) in fresh.items():
            _heard(dispatcher.router, name, report)
            heard[name] = at
        if fresh:
            dispatcher.nudge()


async def _poller(databases: Databases, holder: str, now_ms: int, every: float) -> bool:
    """Whether ``holder`` is (or now becomes) the health poller."""
    async with databases.coordinator.transaction() as tx:
        return await store.claim_lease(
            tx, holder, now_ms, int(every * 3000), role=store.HEALTH_POLLER
        )


async def _ask_health(payers: Mapping[str, Payer]) -> dict[str, Health]:
    """The reports the processors gave (one that would not say is left out)."""
    reports = await asyncio.gather(*(p.health() for p in payers.values()))
    return {name: r for name, r in zip(payers, reports, strict=True) if r is not None}


def _heard(router: Router, name: str, report: Health) -> None:
    router.states[name].on_health(report.failing, report.min_response_ms)
    metrics.processor_failing.labels(name).set(int(report.failing))
    metrics.processor_latency.labels(name).set(report.min_response_ms / 1000)
