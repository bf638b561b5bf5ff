"""Fulfillment use cases: store consumed orders exactly once, and look orders up through a
bounded in-memory cache that falls back to the database."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, get_type_hints

import msgspec
from msgspec import Meta
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.fulfillment import store
from paycore.fulfillment.domain import (
    MAX_ITEMS,
    InvalidOrder,
    Item,
    Order,
    check_values,
    parse_order,
)
from paycore.platform.persistence.uow import Transaction

TOPIC = "orders"

Render = Callable[[Order], bytes]


def _shape(model: type) -> Any:
    """The exact JSON shape of a domain model as a msgspec Struct: every field required, no
    other key, exact JSON types (no ``true`` for a number, no ``1.0`` for an integer), items
    1 to 1000. Ranges and formats are left to the domain's ``check_values``."""
    fields: list[tuple[str, Any]] = []
    for name, hint in get_type_hints(model).items():
        if hint in (str, int):
            fields.append((name, hint))
        elif hint == tuple[Item, ...]:
            item: Any = _shape(Item)
            fields.append((name, Annotated[list[item], Meta(min_length=1, max_length=MAX_ITEMS)]))
        else:
            fields.append((name, _shape(hint)))
    return msgspec.defstruct(model.__name__, fields, forbid_unknown_fields=True)


_SHAPE = msgspec.json.Decoder(_shape(Order))
_ORDER = msgspec.json.Decoder(Order)  # straight into the frozen domain dataclasses


def decode(body: bytes) -> Order:
    """``parse_order``, fast: msgspec checks the JSON and the shape in C (one pass that also
    refuses unknown keys, which it ignores when decoding dataclasses, then one that builds the
    order), and the domain's ``check_values`` does the rest. A body msgspec refuses goes
    through ``parse_order`` itself, so the verdict (kind, field, message) is always exactly
    ``parse_order``'s."""
    try:
        _SHAPE.decode(body)
        order = _ORDER.decode(body)
    except msgspec.DecodeError:  # not JSON, or not the shape: the domain says what is wrong
        return parse_order(body)
    check_values(order)
    return order


async def ingest(tx: Transaction, bodies: Sequence[bytes]) -> list[str | None]:
    """Validate and store a batch of consumed messages in the caller's unit of work. Returns,
    per message, None (stored, or a redelivery of an order already stored identically) or why
    it is refused (invalid, or an ``order_uid`` already stored with other content)."""
    verdicts: list[str | None] = [None] * len(bodies)
    fresh: dict[str, tuple[Order, str]] = {}
    candidates: list[tuple[int, Order, str]] = []
    for index, body in enumerate(bodies):
        try:
            order = decode(body)
        except InvalidOrder as exc:
            verdicts[index] = f"{exc.kind}: {exc}"
            continue
        candidates.append((index, order, store.content_hash(order)))
    stored = await store.stored_hashes(tx.conn, list({o.order_uid for _, o, _ in candidates}))
    for index, order, digest in candidates:
        known = stored.get(order.order_uid) or (
            fresh[order.order_uid][1] if order.order_uid in fresh else None
        )
        if known is None:
            fresh[order.order_uid] = (order, digest)
        elif known != digest:
            verdicts[index] = (
                f"duplicate-order-uid: order {order.order_uid} is already stored with other content"
            )
    await store.insert_orders(tx, list(fresh.values()))
    return verdicts


class OrderCache:
    """A bounded LRU of orders rendered as response bytes, filled from the database on a
    miss and warmed with the most recent orders at start."""

    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        render: Render,
        *,
        size: int,
    ) -> None:
        self._connect = connect
        self._render = render
        self._size = size
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def warm(self, batch: int = 1_000) -> int:
        """Load the most recent orders (up to the cache size); returns how many."""
        async with self._connect() as conn:
            uids = await store.recent_uids(conn, self._size)
            for start in range(0, len(uids), batch):
                chunk = uids[start : start + batch]
                found = await store.load_orders(conn, chunk)
                for uid in reversed(chunk):  # oldest first, so the newest end up most recent
                    if uid in found:
                        self._put(uid, self._render(found[uid]))
        return len(self._entries)

    def get_cached(self, uid: str) -> bytes | None:
        """The cached rendering, or None (no I/O)."""
        body = self._entries.get(uid)
        if body is not None:
            self._entries.move_to_end(uid)
            self.hits += 1
        return body

    async def get(self, uid: str) -> bytes | None:
        """The order's rendering from the cache, else from the database; None when unknown."""
        if (body := self.get_cached(uid)) is not None:
            return body
        self.misses += 1
        async with self._connect() as conn:
            found = await store.load_orders(conn, [uid])
        if uid not in found:
            return None
        body = self._render(found[uid])
        self._put(uid, body)
        return body

    def _put(self, uid: str, body: bytes) -> None:
        self._entries[uid] = body
        self._entries.move_to_end(uid)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
