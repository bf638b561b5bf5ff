"""Fulfillment tables (order, delivery, payment, items: normalized) and their queries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from operator import attrgetter

import msgspec
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.fulfillment.domain import Delivery, Item, Order, Payment
from paycore.platform.clock import utcnow
from paycore.platform.persistence.db import BIG_ID, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction

_DELIVERY_FIELDS = tuple(Delivery.__dataclass_fields__)
_PAYMENT_FIELDS = tuple(Payment.__dataclass_fields__)
_ITEM_FIELDS = tuple(Item.__dataclass_fields__)

orders = Table(
    "fulfillment_orders",
    metadata,
    Column("seq", BIG_ID, primary_key=True, autoincrement=True),
    Column("order_uid", String(64), nullable=False, unique=True),
    Column("content_hash", String(64), nullable=False),
    Column("track_number", String(200), nullable=False),
    Column("entry", String(200), nullable=False),
    Column("locale", String(5), nullable=False),
    Column("internal_signature", String(500), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("delivery_service", String(200), nullable=False),
    Column("shardkey", String(200), nullable=False),
    Column("sm_id", BigInteger, nullable=False),
    Column("date_created", String(40), nullable=False),
    Column("oof_shard", String(200), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

deliveries = Table(
    "fulfillment_deliveries",
    metadata,
    Column("order_uid", String(64), ForeignKey("fulfillment_orders.order_uid"), primary_key=True),
    *(Column(name, String(500), nullable=False) for name in _DELIVERY_FIELDS),
)

_PAYMENT_TEXT = ("transaction", "request_id", "currency", "provider", "bank")
payments = Table(
    "fulfillment_payments",
    metadata,
    Column("order_uid", String(64), ForeignKey("fulfillment_orders.order_uid"), primary_key=True),
    *(
        Column(name, String(200) if name in _PAYMENT_TEXT else BigInteger, nullable=False)
        for name in _PAYMENT_FIELDS
    ),
)

_ITEM_TEXT = ("track_number", "rid", "name", "size", "brand")
items = Table(
    "fulfillment_items",
    metadata,
    Column("order_uid", String(64), ForeignKey("fulfillment_orders.order_uid"), primary_key=True),
    Column("position", Integer, primary_key=True),
    *(
        Column(name, String(500) if name in _ITEM_TEXT else BigInteger, nullable=False)
        for name in _ITEM_FIELDS
    ),
)

_ORDER_SCALARS = [
    name for name in Order.__dataclass_fields__ if name not in ("delivery", "payment", "items")
]


_SORTED_JSON = msgspec.json.Encoder(order="sorted")


def content_hash(order: Order) -> str:
    """A fingerprint of the order's content (to tell a redelivery from a clashing order):
    SHA-256 of its compact JSON with keys sorted at every level. msgspec encodes the
    dataclasses directly, byte for byte what ``orjson.dumps(order_to_dict(order),
    option=OPT_SORT_KEYS)`` gives (the form stored by earlier versions) at a third of the
    cost."""
    return hashlib.sha256(_SORTED_JSON.encode(order)).hexdigest()


async def stored_hashes(conn: AsyncConnection, uids: Sequence[str]) -> dict[str, str]:
    """``order_uid -> content hash`` of the given orders already stored."""
    query = select(orders.c.order_uid, orders.c.content_hash).where(orders.c.order_uid.in_(uids))
    return {r.order_uid: r.content_hash for r in await conn.execute(query)}


_ORDER_COLUMNS = ("content_hash", "stored_at", *_ORDER_SCALARS)
_order_values = attrgetter(*_ORDER_SCALARS)
_delivery_values = attrgetter(*_DELIVERY_FIELDS)
_payment_values = attrgetter(*_PAYMENT_FIELDS)
_item_values = attrgetter(*_ITEM_FIELDS)


async def insert_orders(tx: Transaction, new: Sequence[tuple[Order, str]]) -> None:
    """Store orders ``(order, content hash)`` in the four tables: four bulk inserts in all."""
    if not new:
        return
    now = utcnow()
    await tx.insert(orders, _ORDER_COLUMNS, [(digest, now, *_order_values(o)) for o, digest in new])
    await tx.insert(
        deliveries,
        ("order_uid", *_DELIVERY_FIELDS),
        [(o.order_uid, *_delivery_values(o.delivery)) for o, _ in new],
    )
    await tx.insert(
        payments,
        ("order_uid", *_PAYMENT_FIELDS),
        [(o.order_uid, *_payment_values(o.payment)) for o, _ in new],
    )
    await tx.insert(
        items,
        ("order_uid", "position", *_ITEM_FIELDS),
        [(o.order_uid, i, *_item_values(item)) for o, _ in new for i, item in enumerate(o.items)],
    )


async def load_orders(conn: AsyncConnection, uids: Sequence[str]) -> dict[str, Order]:
    """The stored orders among ``uids``, rebuilt from the four tables."""
    heads = (await conn.execute(select(orders).where(orders.c.order_uid.in_(uids)))).all()
    if not heads:
        return {}
    found = [h.order_uid for h in heads]
    delivery = {
        r.order_uid: r
        for r in await conn.execute(select(deliveries).where(deliveries.c.order_uid.in_(found)))
    }
    payment = {
        r.order_uid: r
        for r in await conn.execute(select(payments).where(payments.c.order_uid.in_(found)))
    }
    lines: dict[str, list[Item]] = {}
    query = select(items).where(items.c.order_uid.in_(found)).order_by(items.c.position)
    for r in await conn.execute(query):
        lines.setdefault(r.order_uid, []).append(Item(**{n: getattr(r, n) for n in _ITEM_FIELDS}))
    return {
        h.order_uid: Order(
            **{n: getattr(h, n) for n in _ORDER_SCALARS},
            delivery=Delivery(**{n: getattr(delivery[h.order_uid], n) for n in _DELIVERY_FIELDS}),
            payment=Payment(**{n: getattr(payment[h.order_uid], n) for n in _PAYMENT_FIELDS}),
            items=tuple(lines.get(h.order_uid, ())),
        )
        for h in heads
    }


async def recent_uids(conn: AsyncConnection, limit: int) -> list[str]:
    """The ``limit`` most recently stored order ids, newest first."""
    query = select(orders.c.order_uid).order_by(orders.c.seq.desc()).limit(limit)
    return list((await conn.execute(query)).scalars())


async def count_orders(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(orders))).scalar_one())
