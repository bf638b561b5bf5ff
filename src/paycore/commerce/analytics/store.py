"""The analytics read model: orders as received (ours and the challenge's) with their lines,
and every consumed message, for the queries and the archive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    LargeBinary,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.commerce.domain import Order, OrderLine
from paycore.platform.clock import utcnow
from paycore.platform.persistence.db import BIG_ID, AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction

analytics_orders = Table(
    "commerce_analytics_orders",
    metadata,
    Column("seq", BIG_ID, primary_key=True, autoincrement=True),
    Column("order_id", BigInteger, nullable=False, unique=True),
    Column("customer_id", BigInteger, nullable=False, index=True),
    Column("total_cents", BigInteger, nullable=False),
    Column("item_count", BigInteger, nullable=False),
    Column("ordered_at", UtcDateTime(), nullable=False),
    Column("source", String(20), nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,  # seq never reused: it is the archive's progress marker
)

analytics_lines = Table(
    "commerce_analytics_lines",
    metadata,
    Column("order_id", BigInteger, primary_key=True),
    Column("product", String(200), primary_key=True),
    Column("unit_cents", BigInteger, primary_key=True),
    Column("quantity", BigInteger, nullable=False),
)

consumed_messages = Table(
    "commerce_consumed_messages",
    metadata,
    Column("seq", BIG_ID, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("topic", String(200), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("body", LargeBinary, nullable=False),
    sqlite_autoincrement=True,
)


async def recorded_orders(conn: AsyncConnection, order_ids: Sequence[int]) -> dict[int, Order]:
    """The recorded orders among ``order_ids``, with their lines."""
    heads = (
        await conn.execute(
            select(analytics_orders).where(analytics_orders.c.order_id.in_(order_ids))
        )
    ).all()
    if not heads:
        return {}
    lines = await lines_of(conn, [h.order_id for h in heads])
    return {
        h.order_id: Order(
            h.order_id, h.customer_id, tuple(sorted(lines.get(h.order_id, []))), h.ordered_at
        )
        for h in heads
    }


ARCHIVED_TABLES_LOCK = 0x7061_7963_6F72_6501  # an advisory lock key of our own


async def take_archive_turn(tx: Transaction) -> None:
    """Wait until no other transaction is writing the archived tables. Their ``seq`` values
    are then committed in order, which the archive relies on: its progress marker is the last
    ``seq`` archived, so a lower ``seq`` committed after a higher one would never be."""
    await tx.serialize(ARCHIVED_TABLES_LOCK)


_HEAD_COLUMNS = (
    "order_id",
    "customer_id",
    "total_cents",
    "item_count",
    "ordered_at",
    "source",
    "message_id",
    "recorded_at",
)


async def record_orders(
    tx: Transaction, received: Sequence[tuple[Order, str]], *, source: str
) -> set[int]:
    """Insert orders ``(order, message id)`` of one source with their lines, in two statements,
    skipping order ids already recorded; returns the ids it inserted."""
    await take_archive_turn(tx)
    now = utcnow()
    heads = [
        (o.order_id, o.customer_id, o.total_cents, o.item_count, o.ordered_at, source, m, now)
        for o, m in received
    ]
    inserted = await tx.insert_new(
        analytics_orders, ("order_id",), _HEAD_COLUMNS, heads, returning=("order_id",)
    )
    new = {order_id for (order_id,) in inserted}
    lines = [
        (o.order_id, line.product, line.unit_cents, line.quantity)
        for o, _ in received
        if o.order_id in new
        for line in o.lines
    ]
    await tx.insert(analytics_lines, ("order_id", "product", "unit_cents", "quantity"), lines)
    return new


async def record_messages(
    tx: Transaction, messages: Sequence[tuple[str, bytes]], *, topic: str, at: datetime
) -> None:
    """Keep consumed messages ``(message id, body)`` for the archive."""
    await take_archive_turn(tx)
    await tx.insert(
        consumed_messages,
        ("message_id", "topic", "body", "received_at"),
        [(i, topic, b, at) for i, b in messages],
    )


async def order_total(conn: AsyncConnection, order_id: int) -> int | None:
    query = select(analytics_orders.c.total_cents).where(analytics_orders.c.order_id == order_id)
    value = (await conn.execute(query)).scalar_one_or_none()
    return None if value is None else int(value)


async def customer_summary(conn: AsyncConnection, customer_id: int) -> tuple[int, int]:
    """(number of orders, sum of their totals in cents)."""
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(analytics_orders.c.total_cents), 0)).where(
                analytics_orders.c.customer_id == customer_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


@dataclass(frozen=True, slots=True)
class CustomerOrder:
    order_id: int
    customer_id: int
    total_cents: int


async def customer_orders(
    conn: AsyncConnection, customer_id: int, *, offset: int, limit: int
) -> list[CustomerOrder]:
    query = (
        select(
            analytics_orders.c.order_id,
            analytics_orders.c.customer_id,
            analytics_orders.c.total_cents,
        )
        .where(analytics_orders.c.customer_id == customer_id)
        .order_by(analytics_orders.c.order_id)
        .offset(offset)
        .limit(limit)
    )
    return [CustomerOrder(*row) for row in await conn.execute(query)]


@dataclass(frozen=True, slots=True)
class MonthFigures:
    orders: int
    total_cents: int
    items: int
    customers: int
    messages: int


async def month_figures(conn: AsyncConnection, start: datetime, end: datetime) -> MonthFigures:
    """Orders (count, total, items, distinct customers) and consumed messages recorded in
    ``[start, end)``."""
    o, m = analytics_orders.c, consumed_messages.c
    orders = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(o.total_cents), 0),
                func.coalesce(func.sum(o.item_count), 0),
                func.count(func.distinct(o.customer_id)),
            ).where(o.ordered_at >= start, o.ordered_at < end)
        )
    ).one()
    messages = (
        await conn.execute(select(func.count()).where(m.received_at >= start, m.received_at < end))
    ).scalar_one()
    count, total, items, customers = (int(v) for v in orders)
    return MonthFigures(count, total, items, customers, int(messages))


async def all_recorded_orders(conn: AsyncConnection) -> list[Order]:
    """Every recorded order with its lines (to rebuild an in-process analytics board)."""
    lines: dict[int, list[OrderLine]] = {}
    for r in await conn.execute(select(analytics_lines)):
        lines.setdefault(r.order_id, []).append(OrderLine(r.product, r.quantity, r.unit_cents))
    heads = await conn.execute(select(analytics_orders).order_by(analytics_orders.c.seq))
    return [
        Order(h.order_id, h.customer_id, tuple(lines.get(h.order_id, ())), h.ordered_at)
        for h in heads
    ]


async def orders_after(conn: AsyncConnection, seq: int, limit: int) -> Sequence[AnyRow]:
    query = (
        select(analytics_orders)
        .where(analytics_orders.c.seq > seq)
        .order_by(analytics_orders.c.seq)
        .limit(limit)
    )
    return (await conn.execute(query)).all()


async def lines_of(conn: AsyncConnection, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    found: dict[int, list[OrderLine]] = {}
    lines = analytics_lines.c
    query = select(lines.order_id, lines.product, lines.quantity, lines.unit_cents).where(
        lines.order_id.in_(order_ids)
    )
    # Unpacked, not read by attribute name: the archive reads every line, and a Row's
    # attributes cost more than the rest of the loop.
    for order_id, product, quantity, unit_cents in await conn.execute(query):
        found.setdefault(order_id, []).append(OrderLine(product, quantity, unit_cents))
    return found


async def messages_after(conn: AsyncConnection, seq: int, limit: int) -> Sequence[AnyRow]:
    query = (
        select(consumed_messages)
        .where(consumed_messages.c.seq > seq)
        .order_by(consumed_messages.c.seq)
        .limit(limit)
    )
    return (await conn.execute(query)).all()
