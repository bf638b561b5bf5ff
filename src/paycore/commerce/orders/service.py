"""Commerce write side: customers, products, and orders written with their ``order-created``
event by group commit."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.commerce import messages
from paycore.commerce.domain import (
    Conflict,
    InvalidValue,
    NotFound,
    Order,
    OrderLine,
    merge_requested,
    normalize_email,
    price_lines,
)
from paycore.commerce.orders import store
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
