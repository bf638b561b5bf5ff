"""Fulfillment use cases: store consumed orders exactly once, and look orders up through a
bounded in-memory cache that falls back to the database."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.fulfillment import store
from paycore.fulfillment.domain import DuplicateOrderUid, InvalidOrder, Order
from paycore.fulfillment.messages import decode
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.persistence.uow import Transaction

TOPIC = "orders"

Render = Callable[[Order], bytes]


async def ingest(tx: Transaction, bodies: Sequence[bytes]) -> list[str | None]:
    """Validate and store a batch of consumed messages in the caller's unit of work. Returns,
    per message, None (stored, or a redelivery of an order already stored identically) or why
    it is refused (invalid, or an ``order_uid`` already stored with other content)."""
    decoded = decode_each(bodies, decode, own=InvalidOrder, describe=_refusal)
    verdicts = decoded.verdicts
    fresh: dict[str, tuple[Order, str]] = {}
    candidates = [(index, order, store.content_hash(order)) for index, order in decoded.values]
    stored = await store.stored_hashes(tx.conn, list({o.order_uid for _, o, _ in candidates}))
    for index, order, digest in candidates:
        known = stored.get(order.order_uid) or (
            fresh[order.order_uid][1] if order.order_uid in fresh else None
        )
        if known is None:
            fresh[order.order_uid] = (order, digest)
        elif known != digest:
            clash = DuplicateOrderUid(order.order_uid)
            verdicts[index] = f"{clash.code}: {clash}"
    await store.insert_orders(tx, list(fresh.values()))
    return verdicts


async def refuse_clash(conn: AsyncConnection, order: Order) -> None:
    """``DuplicateOrderUid`` if the order's ``order_uid`` is stored with other content,
    compared canonically (the content hash of the decoded order: key order and spacing do not
    count). The same order again passes: the worker stores it once."""
    stored = (await store.stored_hashes(conn, [order.order_uid])).get(order.order_uid)
    if stored is not None and stored != store.content_hash(order):
        raise DuplicateOrderUid(order.order_uid)


def _refusal(exc: InvalidOrder) -> str:
    return f"{exc.kind}: {exc}"


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
