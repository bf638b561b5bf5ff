"""Commerce analytics: record orders once (database and rankings), answer the challenge's
queries, archive every order and message per month."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.commerce.analytics import store
from paycore.commerce.analytics.archive import (
    Archive,
    ArchivedOrder,
    MonthlyReport,
    as_utc,
    message_record,
)
from paycore.commerce.analytics.board import Board
from paycore.commerce.domain import NotFound, Order, OrderLine
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database, Transaction


@dataclass(frozen=True, slots=True)
class Received:
    """An order decoded from a consumed message."""

    order: Order
    message_id: str
    body: bytes


async def record_orders(
    tx: Transaction, received: Sequence[Received], *, board: Board, source: str, topic: str
) -> list[str | None]:
    """Record orders once each (database and board), in a handful of statements for the whole
    batch. Returns, per message, None (recorded, or a harmless repeat) or why it is refused
    (the order id is already recorded with other content). Every message is kept for the
    archive. New orders are inserted without reading first (the order id's unique index
    decides); only ids already there are read back, to tell a repeat from a clash."""
    if not received:
        return []
    await store.record_messages(
        tx, [(r.message_id, r.body) for r in received], topic=topic, at=utcnow()
    )
    first: dict[int, Received] = {}  # per order id, the message that may record it
    for item in received:
        first.setdefault(item.order.order_id, item)
    inserted = await store.record_orders(
        tx, [(r.order, r.message_id) for r in first.values()], source=source
    )
    known = {r.order.order_id: r.order for r in first.values() if r.order.order_id in inserted}
    if len(inserted) < len(first):
        known |= await store.recorded_orders(tx.conn, [i for i in first if i not in inserted])
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


def _same(a: Order, b: Order) -> bool:
    return a.customer_id == b.customer_id and sorted(a.lines) == sorted(b.lines)


async def rebuild_board(db: Database, board: Board) -> int:
    """Count every recorded order on a fresh (in-process) board."""
    async with db.connect() as conn:
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
    rows: Sequence[store.CustomerOrder]

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
    db: Database,
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
        heads, lines, msgs = await _unarchived(db, state, batch, chunk)
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
            report = await monthly_report(db, month)
            await asyncio.to_thread(archive.write_report, month, report)
    return written


async def _unarchived(
    db: Database, state: dict[str, int], batch: int, chunk: int
) -> tuple[list[Any], dict[int, list[OrderLine]], list[Any]]:
    """Up to ``batch`` orders (with their lines) and messages past ``state``, ``chunk`` rows
    per query, one connection per query."""
    heads = await _rows_after(db, store.orders_after, state["orders"], batch, chunk)
    lines: dict[int, list[OrderLine]] = {}
    for start in range(0, len(heads), chunk):
        part = heads[start : start + chunk]
        async with db.connect() as conn:
            lines |= await store.lines_of(conn, [h.order_id for h in part])
        await asyncio.sleep(ARCHIVE_PAUSE_SECONDS)
    msgs = await _rows_after(db, store.messages_after, state["messages"], batch, chunk)
    return heads, lines, msgs


async def _rows_after(
    db: Database,
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
        async with db.connect() as conn:
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


def _order_record(head: Any, lines: Sequence[OrderLine]) -> ArchivedOrder:
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


async def monthly_report(db: Database, month: str) -> MonthlyReport:
    """Figures of one calendar month (UTC), computed from the read model."""
    year, number = (int(p) for p in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    async with db.connect() as conn:
        figures = await store.month_figures(conn, start, end)
    return {
        "month": month,
        "orders": figures.orders,
        "totalCents": figures.total_cents,
        "items": figures.items,
        "customers": figures.customers,
        "messages": figures.messages,
        "generatedAt": utcnow().isoformat(),
    }
