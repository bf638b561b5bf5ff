"""Commerce tables and queries: the write side (customers, products, orders) and the
analytics read model (orders as received, consumed messages, for queries and the archive)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.commerce.domain import Order, OrderLine
from paycore.platform.clock import utcnow
from paycore.platform.persistence import bulk
from paycore.platform.persistence.db import BIG_ID, AnyRow, UtcDateTime, metadata
from paycore.platform.single_flight import SingleFlight

customers = Table(
    "commerce_customers",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
)

products = Table(
    "commerce_products",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("value_cents", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

orders = Table(
    "commerce_orders",
    metadata,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("customer_id", BIG_ID, ForeignKey("commerce_customers.id"), nullable=False, index=True),
    Column("total_cents", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

order_items = Table(
    "commerce_order_items",
    metadata,
    Column("order_id", BIG_ID, ForeignKey("commerce_orders.id"), primary_key=True),
    Column("product", String(200), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_cents", BigInteger, nullable=False),
)

# --- analytics read model (owned by the analytics service) --------------------------------

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


# --- write side --------------------------------------------------------------------------


async def insert_customer(conn: AsyncConnection, email: str, username: str) -> AnyRow:
    result = await conn.execute(
        insert(customers)
        .values(email=email, username=username, created_at=utcnow())
        .returning(*customers.c)
    )
    return result.one()


async def find_customer(
    conn: AsyncConnection, *, email: str | None = None, id: int | None = None
) -> AnyRow | None:
    query = select(customers)
    query = (
        query.where(customers.c.email == email)
        if email is not None
        else query.where(customers.c.id == id)
    )
    return (await conn.execute(query)).first()


async def customer_clash(conn: AsyncConnection, email: str, username: str) -> str | None:
    """Which unique field an existing customer already holds, if any."""
    row = (
        await conn.execute(
            select(customers.c.email, customers.c.username).where(
                (customers.c.email == email) | (customers.c.username == username)
            )
        )
    ).first()
    if row is None:
        return None
    return "email" if row.email == email else "username"


async def insert_product(conn: AsyncConnection, name: str, value_cents: int) -> AnyRow:
    result = await conn.execute(
        insert(products)
        .values(name=name, value_cents=value_cents, created_at=utcnow())
        .returning(*products.c)
    )
    return result.one()


async def find_product(conn: AsyncConnection, name: str) -> AnyRow | None:
    return (await conn.execute(select(products).where(products.c.name == name))).first()


async def list_products(conn: AsyncConnection, *, offset: int, limit: int) -> Sequence[AnyRow]:
    query = select(products).order_by(products.c.id).offset(offset).limit(limit)
    return (await conn.execute(query)).all()


async def prices_of(conn: AsyncConnection, names: Sequence[str]) -> dict[str, int]:
    rows = await conn.execute(
        select(products.c.name, products.c.value_cents).where(products.c.name.in_(names))
    )
    return {r.name: r.value_cents for r in rows}


Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Catalog:
    """Read-through cache of customer ids by e-mail and product prices by name. Both never
    change once created (there is no update or delete), so entries need no invalidation;
    only hits are cached, so a customer or product created later is found at once. The
    database is touched (through ``connect``) only on a miss, and concurrent misses of the
    same key share one query."""

    def __init__(self, connect: Connect, max_entries: int = 100_000) -> None:
        self._connect = connect
        self._customers: dict[str, int] = {}
        self._prices: dict[str, int] = {}
        self._max = max_entries
        self._loads: SingleFlight[tuple[str, str], int | None] = SingleFlight()

    async def customer_id(self, email: str) -> int | None:
        if email not in self._customers:
            found = await self._customer(email)
            if found is not None:
                self._remember(self._customers, email, found)
        return self._customers.get(email)

    async def prices(self, names: Sequence[str]) -> dict[str, int]:
        missing = [n for n in names if n not in self._prices]
        found = await asyncio.gather(*(self._price(n) for n in missing))
        for name, cents in zip(missing, found, strict=True):
            if cents is not None:
                self._remember(self._prices, name, cents)
        return {n: self._prices[n] for n in names if n in self._prices}

    async def _customer(self, email: str) -> int | None:
        async def query() -> int | None:
            async with self._connect() as conn:
                row = await find_customer(conn, email=email)
            return None if row is None else int(row.id)

        return await self._loads.load(("customer", email), query)

    async def _price(self, name: str) -> int | None:
        async def query() -> int | None:
            async with self._connect() as conn:
                return (await prices_of(conn, [name])).get(name)

        return await self._loads.load(("product", name), query)

    def _remember(self, cache: dict[str, int], key: str, value: int) -> None:
        if len(cache) >= self._max:
            cache.clear()
        cache[key] = value


async def insert_orders(
    conn: AsyncConnection, placed: Sequence[tuple[int, Sequence[OrderLine]]], at: datetime
) -> list[int]:
    """Insert orders ``(customer id, lines)`` with their lines; returns ids in input order."""
    result = await conn.execute(
        insert(orders).returning(orders.c.id, sort_by_parameter_order=True),
        [
            {"customer_id": c, "total_cents": sum(x.total_cents for x in lines), "created_at": at}
            for c, lines in placed
        ],
    )
    ids = [int(i) for i in result.scalars().all()]
    await conn.execute(
        insert(order_items),
        line_rows(
            Order(i, customer, tuple(lines), at)
            for i, (customer, lines) in zip(ids, placed, strict=True)
        ),
    )
    return ids


ORDER_COLUMNS = ("id", "customer_id", "total_cents", "created_at")
LINE_COLUMNS = ("order_id", "product", "quantity", "unit_cents")


def order_rows(placed: Iterable[Order]) -> list[dict[str, Any]]:
    """``orders`` rows (``ORDER_COLUMNS``) for orders whose ids are already taken."""
    return [
        {
            "id": o.order_id,
            "customer_id": o.customer_id,
            "total_cents": o.total_cents,
            "created_at": o.ordered_at,
        }
        for o in placed
    ]


def line_rows(placed: Iterable[Order]) -> list[dict[str, Any]]:
    """``order_items`` rows (``LINE_COLUMNS``) of the orders."""
    return [
        {
            "order_id": o.order_id,
            "product": line.product,
            "quantity": line.quantity,
            "unit_cents": line.unit_cents,
        }
        for o in placed
        for line in o.lines
    ]


async def load_order(conn: AsyncConnection, order_id: int) -> Order | None:
    head = (await conn.execute(select(orders).where(orders.c.id == order_id))).first()
    if head is None:
        return None
    rows = await conn.execute(
        select(order_items)
        .where(order_items.c.order_id == order_id)
        .order_by(order_items.c.product)
    )
    lines = tuple(OrderLine(r.product, r.quantity, r.unit_cents) for r in rows)
    return Order(head.id, head.customer_id, lines, head.created_at)


# --- analytics read model ----------------------------------------------------------------


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


async def record_order(
    conn: AsyncConnection, order: Order, *, source: str, message_id: str
) -> None:
    await record_orders(conn, [(order, message_id)], source=source)


ARCHIVED_TABLES_LOCK = 0x7061_7963_6F72_6501  # an advisory lock key of our own
_TURN_TAKEN = "paycore.commerce.archive_turn"  # the transaction that holds the lock


async def take_archive_turn(conn: AsyncConnection) -> None:
    """Wait until no other transaction is writing the archived tables (PostgreSQL: a
    transaction-level advisory lock, taken once per transaction; SQLite has one writer at a
    time anyway). Their ``seq`` values are then committed in order, which the archive relies
    on: its progress marker is the last ``seq`` archived, so a lower ``seq`` committed after a
    higher one would never be."""
    if conn.dialect.name != "postgresql":
        return
    current = conn.sync_connection.get_transaction() if conn.sync_connection else None
    if current is not None and conn.info.get(_TURN_TAKEN) is current:
        return
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ARCHIVED_TABLES_LOCK})
    conn.info[_TURN_TAKEN] = current  # kept alive here, so no later transaction shares its id


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
    conn: AsyncConnection, received: Sequence[tuple[Order, str]], *, source: str
) -> set[int]:
    """Insert orders ``(order, message id)`` of one source with their lines, in two statements,
    skipping order ids already recorded; returns the ids it inserted."""
    await take_archive_turn(conn)
    now = utcnow()
    heads = [
        (o.order_id, o.customer_id, o.total_cents, o.item_count, o.ordered_at, source, m, now)
        for o, m in received
    ]
    inserted = await bulk.insert_new(
        conn, analytics_orders, ("order_id",), _HEAD_COLUMNS, heads, returning=("order_id",)
    )
    new = {order_id for (order_id,) in inserted}
    lines = [
        (o.order_id, line.product, line.unit_cents, line.quantity)
        for o, _ in received
        if o.order_id in new
        for line in o.lines
    ]
    await bulk.bulk_insert(
        conn, analytics_lines, ("order_id", "product", "unit_cents", "quantity"), lines
    )
    return new


async def record_message(
    conn: AsyncConnection, *, message_id: str, topic: str, body: bytes, at: datetime
) -> None:
    await record_messages(conn, [(message_id, body)], topic=topic, at=at)


async def record_messages(
    conn: AsyncConnection, messages: Sequence[tuple[str, bytes]], *, topic: str, at: datetime
) -> None:
    """Keep consumed messages ``(message id, body)`` for the archive."""
    await take_archive_turn(conn)
    await bulk.bulk_insert(
        conn,
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


async def customer_orders(
    conn: AsyncConnection, customer_id: int, *, offset: int, limit: int
) -> Sequence[AnyRow]:
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
    return (await conn.execute(query)).all()


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
