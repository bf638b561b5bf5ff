"""Commerce write side: customers and products in a unit of work, orders with their
``order-created`` event by the batch writer (group commit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from paycore.commerce import messages
from paycore.commerce.domain import (
    Conflict,
    Customer,
    InvalidValue,
    NotFound,
    Order,
    OrderLine,
    Product,
    merge_requested,
    normalize_email,
    price_lines,
)
from paycore.commerce.orders import store
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.batch import Batch, GroupWriter
from paycore.platform.persistence.uow import Database, Transaction


async def create_customer(tx: Transaction, *, email: str, username: str) -> Customer:
    email, username = normalize_email(email), username.strip()
    if not username:
        raise InvalidValue("username must not be blank")
    clash = await store.customer_clash(tx.conn, email, username)
    if clash:
        raise Conflict(f"a customer with this {clash} already exists")
    try:
        return await store.insert_customer(tx, email, username)
    except IntegrityError as exc:  # lost a race with a concurrent request
        raise Conflict("a customer with this email or username already exists") from exc


async def create_product(tx: Transaction, *, name: str, value_cents: int) -> Product:
    name = name.strip()
    if not name:
        raise InvalidValue("name must not be blank")
    if value_cents <= 0:
        raise InvalidValue("value must be greater than 0")
    if await store.find_product(tx.conn, name):
        raise Conflict(f"a product named {name!r} already exists")
    try:
        return await store.insert_product(tx, name, value_cents)
    except IntegrityError as exc:
        raise Conflict(f"a product named {name!r} already exists") from exc


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


def order_writer(db: Database) -> GroupWriter[PendingOrder, Order]:
    """Writes orders, their lines and their ``order-created`` events by group commit; an order
    takes the next id of the orders table."""

    def build(pending: Sequence[PendingOrder], ids: Sequence[int], batch: Batch) -> list[Order]:
        orders = _placed(pending, ids, batch.now)
        batch.add(store.orders, store.order_rows(orders))
        batch.add(store.order_items, store.line_rows(orders))
        for order, item in zip(orders, pending, strict=True):
            batch.publish(
                messages.ORDER_CREATED,
                messages.encode_order_created(order),
                key=str(order.customer_id),
                correlation_id=item.correlation_id,
            )
        return orders

    return db.writer(
        build,
        tables=((store.orders, store.ORDER_COLUMNS), (store.order_items, store.LINE_COLUMNS)),
        ids_from=store.orders.c.id,
    )


def _placed(pending: Sequence[PendingOrder], ids: Sequence[int], now: datetime) -> list[Order]:
    return [Order(i, p.customer_id, p.lines, now) for i, p in zip(ids, pending, strict=True)]
