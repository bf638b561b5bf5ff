"""Commerce use cases: the write side (customers, products, orders with their event in the
same transaction) and the analytics side (record orders once, answer the challenge's
queries, archive per month)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.commerce import messages, store
from paycore.commerce.analytics import Board
from paycore.commerce.archive import Archive, as_utc, message_record
from paycore.commerce.domain import (
    CommerceError,
    Order,
    OrderLine,
    merge_requested,
    normalize_email,
    price_lines,
)
from paycore.platform.clock import utcnow
from paycore.platform.messaging import outbox
from paycore.platform.messaging.bus import Envelope
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.batching import BatchWriter
from paycore.platform.persistence.pg_batch import (
    DirectConnection,
    IdBlocks,
    MultiInsert,
    OnOneConnection,
)
from paycore.platform.persistence.sqlite_batch import InOneTransaction, ManyInserts, next_ids


class Conflict(CommerceError):
    code = "conflict"


class NotFound(CommerceError):
    code = "not-found"


class InvalidValue(CommerceError):
    code = "invalid-value"


# --- write side --------------------------------------------------------------------------


async def create_customer(conn: AsyncConnection, *, email: str, username: str) -> dict[str, Any]:
    email, username = normalize_email(email), username.strip()
    if not username:
        raise InvalidValue("username must not be blank")
    clash = await store.customer_clash(conn, email, username)
    if clash:
        raise Conflict(f"a customer with this {clash} already exists")
    try:
        row = await store.insert_customer(conn, email, username)
    except IntegrityError as exc:  # lost a race with a concurrent request
        raise Conflict("a customer with this email or username already exists") from exc
    return dict(row._mapping)


async def create_product(conn: AsyncConnection, *, name: str, value_cents: int) -> dict[str, Any]:
    name = name.strip()
    if not name:
        raise InvalidValue("name must not be blank")
    if value_cents <= 0:
        raise InvalidValue("value must be greater than 0")
    if await store.find_product(conn, name):
        raise Conflict(f"a product named {name!r} already exists")
    try:
        row = await store.insert_product(conn, name, value_cents)
    except IntegrityError as exc:
        raise Conflict(f"a product named {name!r} already exists") from exc
    return dict(row._mapping)


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """A validated, priced order waiting to be written."""

    customer_id: int
    lines: tuple[OrderLine, ...]
    correlation_id: str


async def prepare_order(
    catalog: store.Catalog, *, email: str, items: Sequence[tuple[str, int]]
) -> PendingOrder:
    """Check the customer and the products and freeze today's prices; writes nothing."""
    requested = merge_requested((name.strip(), qty) for name, qty in items)
    customer_id = await catalog.customer_id(normalize_email(email))
    if customer_id is None:
        raise NotFound(f"no customer with email {normalize_email(email)!r}")
    lines = price_lines(requested, await catalog.prices(list(requested)))
    return PendingOrder(customer_id, lines, correlation_id.get())


async def write_orders(conn: AsyncConnection, pending: Sequence[PendingOrder]) -> list[Order]:
    """Store orders and queue their ``order-created`` events, all in the caller's transaction."""
    now = utcnow()
    ids = await store.insert_orders(conn, [(p.customer_id, p.lines) for p in pending], now)
    orders = _placed(pending, ids, now)
    await outbox.enqueue_many(conn, messages.ORDER_CREATED, _events(orders, pending))
    return orders


def order_writer(
    engine: AsyncEngine, handoff: Callable[[list[Envelope]], None]
) -> BatchWriter[PendingOrder, Order]:
    """Commits batches of orders and hands their events to the relay. On PostgreSQL a batch
    is one statement (orders, lines and events; ids taken ahead from the orders sequence), on
    SQLite one transaction run in one go on the driver's connection (ids: the next ones the
    table gives, read under the write lock)."""
    tables = (
        (store.orders, store.ORDER_COLUMNS),
        (store.order_items, store.LINE_COLUMNS),
        (outbox.outbox, outbox.ROW_COLUMNS),
    )
    if engine.dialect.name != "postgresql":
        insert_now = ManyInserts(engine, *tables)

        def write_now(
            db: sqlite3.Connection, pending: Sequence[PendingOrder]
        ) -> tuple[list[Order], list[Envelope]]:
            orders = _placed(pending, next_ids(db, store.orders.c.id, len(pending)), utcnow())
            events = outbox.rows(messages.ORDER_CREATED, _events(orders, pending))
            insert_now(db, store.order_rows(orders), store.line_rows(orders), events)
            return orders, [outbox.envelope(e) for e in events]

        return InOneTransaction(engine, write_now, handoff)
    ids = IdBlocks(store.orders.c.id)
    insert = MultiInsert(*tables)

    async def write(conn: DirectConnection, pending: Sequence[PendingOrder]) -> list[Order]:
        orders = _placed(pending, await ids.take(conn, len(pending)), utcnow())
        events = outbox.rows(messages.ORDER_CREATED, _events(orders, pending))
        await insert(conn, store.order_rows(orders), store.line_rows(orders), events)
        handoff([outbox.envelope(e) for e in events])
        return orders

    return OnOneConnection(engine.url, write)


def _placed(pending: Sequence[PendingOrder], ids: Sequence[int], now: datetime) -> list[Order]:
    return [Order(i, p.customer_id, p.lines, now) for i, p in zip(ids, pending, strict=True)]


def _events(
    orders: Sequence[Order], pending: Sequence[PendingOrder]
) -> list[tuple[bytes, str, str]]:
    return [
        (messages.encode_order_created(o), str(o.customer_id), p.correlation_id)
        for o, p in zip(orders, pending, strict=True)
    ]


async def create_order(
    conn: AsyncConnection, *, email: str, items: Sequence[tuple[str, int]]
) -> Order:
    """Validate, store the order and queue its event in the caller's transaction."""
    catalog = store.Catalog(lambda: contextlib.nullcontext(conn))
    pending = await prepare_order(catalog, email=email, items=items)
    return (await write_orders(conn, [pending]))[0]


# --- analytics side ----------------------------------------------------------------------


class DuplicateOrderId(CommerceError):
    """The order id is already recorded with different content: the message is refused."""

    code = "duplicate-order-id"


@dataclass(frozen=True, slots=True)
class Received:
    """An order decoded from a consumed message."""

    order: Order
    message_id: str
    body: bytes


async def record_orders(
    conn: AsyncConnection, received: Sequence[Received], *, board: Board, source: str, topic: str
) -> list[str | None]:
    """Record orders once each (database and board), in a handful of statements for the whole
    batch. Returns, per message, None (recorded, or a harmless repeat) or why it is refused
    (the order id is already recorded with other content). Every message is kept for the
    archive. New orders are inserted without reading first (the order id's unique index
    decides); only ids already there are read back, to tell a repeat from a clash."""
    if not received:
        return []
    await store.record_messages(
        conn, [(r.message_id, r.body) for r in received], topic=topic, at=utcnow()
    )
    first: dict[int, Received] = {}  # per order id, the message that may record it
    for item in received:
        first.setdefault(item.order.order_id, item)
    inserted = await store.record_orders(
        conn, [(r.order, r.message_id) for r in first.values()], source=source
    )
    known = {r.order.order_id: r.order for r in first.values() if r.order.order_id in inserted}
    if len(inserted) < len(first):
        known |= await store.recorded_orders(conn, [i for i in first if i not in inserted])
    verdicts: list[str | None] = []
    for item in received:
        order = item.order
        if _same(known[order.order_id], order):
            verdicts.append(None)  # new, or a repeat; its board count is (re)applied below, once
        else:
            verdicts.append(f"order {order.order_id} was already recorded with other content")
    # Idempotent per order id; also completes a count a crash may have interrupted.
    await board.record_many(
        [known[r.order.order_id] for r, v in zip(received, verdicts, strict=True) if v is None]
    )
    return verdicts


async def record_order(
    conn: AsyncConnection,
    order: Order,
    *,
    board: Board,
    source: str,
    topic: str,
    message_id: str,
    body: bytes,
) -> bool:
    """Record one order; False for a harmless repeat, ``DuplicateOrderId`` for a clash."""
    fresh = order.order_id not in await store.recorded_orders(conn, [order.order_id])
    [verdict] = await record_orders(
        conn, [Received(order, message_id, body)], board=board, source=source, topic=topic
    )
    if verdict is not None:
        raise DuplicateOrderId(verdict)
    return fresh


def _same(a: Order, b: Order) -> bool:
    return a.customer_id == b.customer_id and sorted(a.lines) == sorted(b.lines)


async def rebuild_board(engine: AsyncEngine, board: Board) -> int:
    """Count every recorded order on a fresh (in-process) board."""
    async with engine.connect() as conn:
        recorded = await store.all_recorded_orders(conn)
    for order in recorded:
        await board.record(order)
    return len(recorded)


@dataclass(frozen=True, slots=True)
class Page:
    page: int
    page_size: int
    total_elements: int
    total_on_orders_cents: int
    rows: Sequence[Any]

    @property
    def total_pages(self) -> int:
        return -(-self.total_elements // self.page_size)


async def order_total(conn: AsyncConnection, order_id: int) -> int:
    total = await store.order_total(conn, order_id)
    if total is None:
        raise NotFound(f"order {order_id} is unknown")
    return total


async def orders_of_customer(
    conn: AsyncConnection, customer_id: int, *, page: int, page_size: int
) -> Page:
    count, spent = await store.customer_summary(conn, customer_id)
    rows = await store.customer_orders(conn, customer_id, offset=page * page_size, limit=page_size)
    return Page(page, page_size, count, spent, rows)


async def order_count(conn: AsyncConnection, customer_id: int) -> int:
    count, _ = await store.customer_summary(conn, customer_id)
    return count


# --- archive -----------------------------------------------------------------------------


ARCHIVE_PAUSE_SECONDS = 0.005
"""A flush's pause after each query: its reading is spread out instead of one burst of CPU
that the API's accept, on the same cores, would wait behind."""


async def flush_archive(
    engine: AsyncEngine,
    archive: Archive,
    *,
    batch: int = 5_000,
    chunk: int = 250,
    reports: bool = True,
) -> int:
    """Write the orders and messages not yet archived; returns how many rows were written. Up to
    ``batch`` rows of a kind make one gzip member per month (appended to the month's open
    segment, ``Archive``), and the flush goes on to the next ``batch`` only while there are
    more: rows committed while it reads wait for the next flush (under steady traffic, chasing
    them wrote a member of a few dozen rows each round, each with its fsyncs). They are read
    ``chunk`` rows at a time, each chunk on a connection taken for it alone, with a short pause
    after each (``ARCHIVE_PAUSE_SECONDS``); records are built, gzipped and fsynced in a thread.
    So the consumers sharing the loop (and, on SQLite, the engine's one connection) wait a chunk
    at most, not a flush: reading a 2-second flush at 500 orders/s in one go held them up for
    tens of ms every 2 s, the lag's spikes. The reports of the months touched are rewritten now
    (``reports``) or by a later flush that asks for them: a report aggregates its whole month."""
    written = 0
    while True:
        state = archive.state()
        heads, lines, msgs = await _unarchived(engine, state, batch, chunk)
        months: set[str] = set()
        last = dict(state)
        if heads:
            months |= await asyncio.to_thread(_archive_orders, archive, heads, lines)
            last["orders"] = heads[-1].seq
        if msgs:
            months |= await asyncio.to_thread(_archive_messages, archive, msgs)
            last["messages"] = msgs[-1].seq
        if not months:
            break
        await asyncio.to_thread(archive.commit, last)
        archive.stale_reports |= months
        written += len(heads) + len(msgs)
        if len(heads) < batch and len(msgs) < batch:
            break
    if reports:
        while archive.stale_reports:
            month = archive.stale_reports.pop()
            report = await monthly_report(engine, month)
            await asyncio.to_thread(archive.write_report, month, report)
    return written


async def _unarchived(
    engine: AsyncEngine, state: dict[str, int], batch: int, chunk: int
) -> tuple[list[Any], dict[int, list[OrderLine]], list[Any]]:
    """Up to ``batch`` orders (with their lines) and messages past ``state``, ``chunk`` rows
    per query, one connection per query."""
    heads = await _rows_after(engine, store.orders_after, state["orders"], batch, chunk)
    lines: dict[int, list[OrderLine]] = {}
    for start in range(0, len(heads), chunk):
        part = heads[start : start + chunk]
        async with engine.connect() as conn:
            lines |= await store.lines_of(conn, [h.order_id for h in part])
        await asyncio.sleep(ARCHIVE_PAUSE_SECONDS)
    msgs = await _rows_after(engine, store.messages_after, state["messages"], batch, chunk)
    return heads, lines, msgs


async def _rows_after(
    engine: AsyncEngine,
    read: Callable[[AsyncConnection, int, int], Awaitable[Sequence[Any]]],
    seq: int,
    batch: int,
    chunk: int,
) -> list[Any]:
    """Up to ``batch`` rows past ``seq`` from ``read(conn, after, limit)``, ``chunk`` at a time,
    pausing after each (a read on SQLite never waits, so it would never yield by itself)."""
    found: list[Any] = []
    while len(found) < batch:
        limit = min(chunk, batch - len(found))
        async with engine.connect() as conn:
            rows = await read(conn, seq, limit)
        await asyncio.sleep(ARCHIVE_PAUSE_SECONDS)
        found += rows
        if len(rows) < limit:
            break
        seq = rows[-1].seq
    return found


def _archive_orders(
    archive: Archive, heads: Sequence[Any], lines: dict[int, list[Any]]
) -> set[str]:
    records = [(h.seq, h.ordered_at, _order_record(h, lines.get(h.order_id, []))) for h in heads]
    return archive.write("orders", records)


def _archive_messages(archive: Archive, msgs: Sequence[Any]) -> set[str]:
    records = [
        (m.seq, m.received_at, message_record(m.seq, m.message_id, m.topic, m.received_at, m.body))
        for m in msgs
    ]
    return archive.write("messages", records)


def _order_record(head: Any, lines: Sequence[Any]) -> dict[str, Any]:
    return {
        "orderId": head.order_id,
        "customerId": head.customer_id,
        "totalCents": head.total_cents,
        "itemCount": head.item_count,
        "orderedAt": as_utc(head.ordered_at).isoformat(),
        "source": head.source,
        "messageId": head.message_id,
        "items": [
            {"product": line.product, "quantity": line.quantity, "unitCents": line.unit_cents}
            for line in lines
        ],
    }


async def monthly_report(engine: AsyncEngine, month: str) -> dict[str, Any]:
    """Figures of one calendar month (UTC), computed from the read model."""
    year, number = (int(p) for p in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    o, m = store.analytics_orders, store.consumed_messages
    async with engine.connect() as conn:
        orders_row = (
            await conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(o.c.total_cents), 0),
                    func.coalesce(func.sum(o.c.item_count), 0),
                    func.count(func.distinct(o.c.customer_id)),
                ).where(o.c.ordered_at >= start, o.c.ordered_at < end)
            )
        ).one()
        message_count = (
            await conn.execute(
                select(func.count()).where(m.c.received_at >= start, m.c.received_at < end)
            )
        ).scalar_one()
    return {
        "month": month,
        "orders": int(orders_row[0]),
        "totalCents": int(orders_row[1]),
        "items": int(orders_row[2]),
        "customers": int(orders_row[3]),
        "messages": int(message_count),
        "generatedAt": utcnow().isoformat(),
    }
