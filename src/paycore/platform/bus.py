"""The publish/subscribe contract every broker adapter implements, and the factory by URL.

Adapters move bytes with broker-level guarantees only:
- ``publish`` returns once the broker has durably accepted every envelope (confirms/acks);
- ``subscribe`` hands batches to a handler and acknowledges them only after the handler
  returns; if it raises (or the process dies) the batch is delivered again.
Retries, backoff, dead letters and deduplication live above, in ``platform.consumer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

MESSAGE_ID = "message-id"
CORRELATION_ID = "correlation-id"
CREATED_AT = "paycore-created-at"  # epoch milliseconds when the event was written (consumer lag)


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message to publish: ``id`` is stable across re-publishing (dedup key)."""

    topic: str
    body: bytes
    id: str
    key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message received. ``id`` comes from the publisher or, for foreign producers, from the
    broker's own coordinates (stream sequence, offset) or the body hash: stable on redelivery."""

    topic: str
    body: bytes
    id: str
    key: str | None
    headers: Mapping[str, str]
    attempt: int = 1


BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where to read from. ``queue`` pins the broker-side queue/consumer name (RabbitMQ queue
    that foreign producers publish to directly); by default it is derived from topic and group."""

    topic: str
    group: str
    queue: str | None = None
    batch: int = 100

    @property
    def queue_name(self) -> str:
        return self.queue or f"{self.topic}.{self.group}"


class Bus(Protocol):
    """A connected broker."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def ensure_topic(self, topic: str) -> None:
        """Create the topic (stream, exchange, Kafka topic) if the broker needs it to exist."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish and wait until the broker confirms all of them."""

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        """Consume until cancelled; ack a batch only after ``handler`` returns."""

    async def stop_consuming(self) -> None:
        """Stop fetching and wait (bounded) for in-flight batches; publishing still works."""


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def create_bus(url: str, *, client_name: str = "paycore") -> Bus:
    """The adapter for the URL scheme: nats://, amqp(s)://, kafka://, redis(s)://."""
    scheme = url.split("://", 1)[0]
    if scheme == "nats":
        from paycore.platform.brokers.nats import NatsBus

        return NatsBus(url, client_name=client_name)
    if scheme in ("amqp", "amqps"):
        from paycore.platform.brokers.rabbitmq import RabbitBus

        return RabbitBus(url, client_name=client_name)
    if scheme == "kafka":
        from paycore.platform.brokers.kafka import KafkaBus

        return KafkaBus(url, client_name=client_name)
    if scheme in ("redis", "rediss"):
        from paycore.platform.brokers.redis_streams import RedisStreamsBus

        return RedisStreamsBus(url, client_name=client_name)
    raise ValueError(f"unsupported broker URL {url!r}: use nats://, amqp://, kafka:// or redis://")


class ConsumeLoops:
    """Lets ``close()`` stop consume loops between batches and wait for in-flight batches."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask loops to stop after their current batch and wait (bounded) until they have."""
        self.stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
