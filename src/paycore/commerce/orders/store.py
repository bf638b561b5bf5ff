"""Tables and queries of the commerce write side: customers, products, orders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.commerce.domain import Customer, Order, OrderLine, Product
from paycore.platform.clock import utcnow
from paycore.platform.persistence.db import BIG_ID, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction
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

# --- write side --------------------------------------------------------------------------


async def insert_customer(tx: Transaction, email: str, username: str) -> Customer:
    result = await tx.execute(
        insert(customers)
        .values(email=email, username=username, created_at=utcnow())
        .returning(*customers.c)
    )
    return Customer(**result.one()._mapping)


async def find_customer(
    conn: AsyncConnection, *, email: str | None = None, id: int | None = None
) -> Customer | None:
    query = select(customers)
    query = (
        query.where(customers.c.email == email)
        if email is not None
        else query.where(customers.c.id == id)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else Customer(**row._mapping)


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


async def insert_product(tx: Transaction, name: str, value_cents: int) -> Product:
    result = await tx.execute(
        insert(products)
        .values(name=name, value_cents=value_cents, created_at=utcnow())
        .returning(*products.c)
    )
    return Product(**result.one()._mapping)


async def find_product(conn: AsyncConnection, name: str) -> Product | None:
    row = (await conn.execute(select(products).where(products.c.name == name))).first()
    return None if row is None else Product(**row._mapping)


async def list_products(conn: AsyncConnection, *, offset: int, limit: int) -> list[Product]:
    query = select(products).order_by(products.c.id).offset(offset).limit(limit)
    return [Product(**row._mapping) for row in await conn.execute(query)]


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
