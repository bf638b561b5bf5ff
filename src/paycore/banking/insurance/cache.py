"""Quotes cached for reading, each for as long as it holds: in Redis when the process has one
(``PAYCORE_REDIS_URL``), shared by every API process; else in this process's memory.

A quote is kept until its ``valid_until`` (its time to live, counted on the real clock: the
validity at the moment it is given) and is gone from the cache after that; the database stays
the source of truth (``service`` reads it on a miss, and issues policies from it alone). The
cache is an optimisation: Redis failing, or a value it cannot read, is a miss (logged), never
an error for the caller.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol

import msgspec

from paycore.banking.insurance.store import QuoteRecord
from paycore.platform.clock import utcnow

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

PREFIX: Final = "paycore:banking:insurance:quote:"
"""Where the quotes are in Redis: the prefix, then the quote's id."""
MEMORY_ENTRIES: Final = 10_000
"""How many quotes the in-memory cache keeps at most (the oldest go first)."""


class QuoteCache(Protocol):
    async def get(self, quote_id: str) -> QuoteRecord | None:
        """The quote, if it is cached and still holds; None otherwise."""

    async def put(self, record: QuoteRecord) -> None:
        """Keep the quote until its ``valid_until``; nothing if that has passed."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(QuoteRecord)


def key_of(quote_id: str) -> str:
    return PREFIX + quote_id


def _ttl_ms(record: QuoteRecord, now: datetime) -> int:
    """Whole milliseconds until the quote stops holding, rounded down: never kept past it
    (0 or less: it has stopped, or stops within the millisecond)."""
    return (record.valid_until - now) // timedelta(milliseconds=1)


class RedisQuoteCache:
    """Quotes in Redis, each a JSON value under ``PREFIX + id`` expiring at its
    ``valid_until`` (``SET … PX``)."""

    def __init__(self, client: Redis, *, clock: Callable[[], datetime] = utcnow) -> None:
        from redis.exceptions import RedisError  # redis is loaded when a client is configured

        self._redis = client
        self._clock = clock
        self._failures: tuple[type[Exception], ...] = (RedisError, OSError)

    async def get(self, quote_id: str) -> QuoteRecord | None:
        try:
            value = await self._redis.get(key_of(quote_id))
        except self._failures:
            log.warning("quote cache unavailable: read from the database", exc_info=True)
            return None
        if value is None:
            return None
        try:
            return _decoder.decode(value)
        except msgspec.DecodeError:
            log.warning("quote cache value unreadable: read from the database", exc_info=True)
            return None

    async def put(self, record: QuoteRecord) -> None:
        ttl = _ttl_ms(record, self._clock())
        if ttl <= 0:
            return
        try:
            await self._redis.set(key_of(record.id), _encoder.encode(record), px=ttl)
        except self._failures:
            log.warning("quote cache unavailable: quote not cached", exc_info=True)


class MemoryQuoteCache:
    """Quotes in this process's memory until their ``valid_until``, ``MEMORY_ENTRIES`` at
    most (when full, the one cached first goes)."""

    def __init__(
        self, *, clock: Callable[[], datetime] = utcnow, entries: int = MEMORY_ENTRIES
    ) -> None:
        self._clock = clock
        self._entries = entries
        self._kept: OrderedDict[str, QuoteRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def get(self, quote_id: str) -> QuoteRecord | None:
        record = self._kept.get(quote_id)
        if record is None:
            return None
        if not record.holds_at(self._clock()):
            del self._kept[quote_id]
            return None
        return record

    async def put(self, record: QuoteRecord) -> None:
        now = self._clock()
        if not record.holds_at(now):
            return
        self._kept[record.id] = record
        self._kept.move_to_end(record.id)
        self._drop_expired(now)
        while len(self._kept) > self._entries:
            self._kept.popitem(last=False)

    def _drop_expired(self, now: datetime) -> None:
        """The expired quotes among the first cached (quotes hold for the same days, so the
        first cached are the first to expire): a few steps per put, not a scan."""
        while self._kept:
            first = next(iter(self._kept.values()))
            if first.holds_at(now):
                return
            self._kept.popitem(last=False)
