"""The analytics board: rankings kept in Redis (each key expires ``ttl`` after its last
update), or in process memory when no Redis is configured (rebuilt from the database at start).

Recording is idempotent per order id (a ``seen`` set updated atomically with the counters in
one Lua script), so a redelivered message never counts twice.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis

from paycore.commerce.domain import Order

KEEP = 100  # how many recent / most expensive orders are kept

RANKINGS = {
    "productsByQuantity": "products:quantity",
    "productsByValue": "products:value",
    "customersBySpend": "customers:spend",
    "customersByOrders": "customers:orders",
    "mostExpensiveOrders": "orders:expensive",
    "recentOrders": "orders:recent",
}


@dataclass(frozen=True, slots=True)
class Entry:
    member: str
    score: int


Snapshot = dict[str, list[Entry]]


class Board(Protocol):
    async def record(self, order: Order) -> bool:
        """Count an order once; False when it was already counted."""

    async def record_many(self, orders: Sequence[Order]) -> int:
        """Count each order once (one round trip where the store allows); returns how many
        were new."""

    async def snapshot(self, limit: int) -> Snapshot:
        """The top ``limit`` of every ranking, highest first."""


_RECORD = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[7])
for i = 0, n - 1 do
  local product = ARGV[8 + i * 3]
  redis.call('ZINCRBY', KEYS[2], tonumber(ARGV[9 + i * 3]), product)
  redis.call('ZINCRBY', KEYS[3], tonumber(ARGV[10 + i * 3]), product)
end
redis.call('ZINCRBY', KEYS[4], tonumber(ARGV[4]), ARGV[3])
redis.call('ZINCRBY', KEYS[5], 1, ARGV[3])
redis.call('ZADD', KEYS[6], tonumber(ARGV[4]), ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(tonumber(ARGV[6]) + 1))
redis.call('ZADD', KEYS[7], tonumber(ARGV[5]), ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -(tonumber(ARGV[6]) + 1))
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end
return 1
"""


class RedisBoard:
    def __init__(
        self, client: Redis, *, ttl_seconds: int, prefix: str = "paycore:commerce:"
    ) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._keys = [prefix + "seen", *(prefix + k for k in RANKINGS.values())]
        self._script = client.register_script(_RECORD)

    async def record(self, order: Order) -> bool:
        return bool(await self._script(keys=self._keys, args=self._args(order)))

    async def record_many(self, orders: Sequence[Order]) -> int:
        if not orders:
            return 0
        pipe = self._redis.pipeline(transaction=False)
        for order in orders:
            await self._script(keys=self._keys, args=self._args(order), client=pipe)
        return sum(int(x) for x in await pipe.execute())

    def _args(self, order: Order) -> list[Any]:
        args: list[Any] = [
            order.order_id,
            self._ttl,
            order.customer_id,
            order.total_cents,
            int(order.ordered_at.timestamp() * 1000),
            KEEP,
            len(order.lines),
        ]
        for line in order.lines:
            args += [line.product, line.quantity, line.total_cents]
        return args

    async def snapshot(self, limit: int) -> Snapshot:
        pipe = self._redis.pipeline(transaction=False)
        for key in self._keys[1:]:
            pipe.zrevrange(key, 0, limit - 1, withscores=True)
        results = await pipe.execute()
        return {
            name: [Entry(m.decode() if isinstance(m, bytes) else str(m), int(s)) for m, s in rows]
            for name, rows in zip(RANKINGS, results, strict=True)
        }


@dataclass
class MemoryBoard:
    """Same rankings in process memory; no TTL (it lives as long as the process)."""

    seen: set[int] = field(default_factory=set)
    scores: dict[str, dict[str, int]] = field(default_factory=lambda: {k: {} for k in RANKINGS})

    async def record(self, order: Order) -> bool:
        if order.order_id in self.seen:
            return False
        self.seen.add(order.order_id)
        s = self.scores
        for line in order.lines:
            _add(s["productsByQuantity"], line.product, line.quantity)
            _add(s["productsByValue"], line.product, line.total_cents)
        customer = str(order.customer_id)
        _add(s["customersBySpend"], customer, order.total_cents)
        _add(s["customersByOrders"], customer, 1)
        _keep_top(s["mostExpensiveOrders"], str(order.order_id), order.total_cents)
        _keep_top(s["recentOrders"], str(order.order_id), int(order.ordered_at.timestamp() * 1000))
        return True

    async def record_many(self, orders: Sequence[Order]) -> int:
        return sum([await self.record(order) for order in orders])

    async def snapshot(self, limit: int) -> Snapshot:
        def best(name: str, ranking: dict[str, int]) -> list[Entry]:
            n = min(limit, KEEP) if name in _ORDER_LISTS else limit
            return [
                Entry(m, v)
                for m, v in heapq.nlargest(n, ranking.items(), key=lambda kv: (kv[1], kv[0]))
            ]

        return {name: best(name, ranking) for name, ranking in self.scores.items()}


_ORDER_LISTS = ("mostExpensiveOrders", "recentOrders")  # cut to KEEP; the others are counters


def _add(ranking: dict[str, int], member: str, amount: int) -> None:
    ranking[member] = ranking.get(member, 0) + amount


def _keep_top(ranking: dict[str, int], member: str, score: int) -> None:
    """Keep (at least) the ``KEEP`` best: the ranking grows to twice that, then is cut back
    in one go, a few steps per order instead of a scan of the ranking for each."""
    ranking[member] = score
    if len(ranking) >= 2 * KEEP:
        best = heapq.nlargest(KEEP, ranking.items(), key=lambda kv: (kv[1], kv[0]))
        ranking.clear()
        ranking.update(best)
