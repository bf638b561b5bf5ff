"""The publish/subscribe contract every broker adapter implements (the adapters, chosen by URL,
are in ``paycore.platform.messaging.brokers``).

Adapters move bytes with broker-level guarantees only:
- ``publish`` returns once the broker has durably accepted every envelope (confirms/acks);
- ``subscribe`` hands batches to a handler and acknowledges them only after the handler
  returns; if it raises (or the process dies) the batch is delivered again.
Retries, backoff, dead letters and deduplication live above, in ``platform.consumer``.

Retention: an adapter is given, per topic, how long the broker may keep its messages
(``Retention``, seconds; topics not named keep them as the broker's defaults do). Past that age a
message is dropped whether or not every group consumed it: it is meant for topics whose data must
not outlive its use (card data), with an age well over the worst consumer lag.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

Retention = Mapping[str, float]
"""Topic -> seconds the broker may keep its messages."""

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
    that foreign producers publish to directly); by default it is derived from topic and group.
    ``exclusive``: one process at a time consumes it (the others stand by), so its messages
    are handled in the order the broker holds them, however many workers run.
    ``idempotent``: its handler recognises a message it handled before by the message's own
    keys (the ledger's transfer ids) and changes nothing for it, its verdict included; the
    consumer then keeps no inbox of message ids for it (see ``consumer``).
    ``overlap``: the bus may fetch the next batch and hand it over while the last is still
    being handled (NATS does; the others hand batches over one at a time); the consumer still
    handles them one after another, in order, each acknowledged once handled."""

    topic: str
    group: str
    queue: str | None = None
    batch: int = 100
    exclusive: bool = False
    idempotent: bool = False
    overlap: bool = False

    @property
    def queue_name(self) -> str:
        return self.queue or f"{self.topic}.{self.group}"


class Bus(Protocol):
    """A connected broker."""

    async def connect(self) -> None:
        """Connect; a broker not reached within ``CONNECT_TIMEOUT_SECONDS`` is a
        ``ConnectionError`` (an ``OSError``) or a ``TimeoutError``, and nothing is printed."""

    async def close(self) -> None: ...

    async def ensure_topic(self, topic: str) -> None:
        """Create the topic (stream, exchange, Kafka topic) if the broker needs it to exist."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish and wait until the broker confirms all of them."""

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        """Consume until cancelled; ack a batch only after ``handler`` returns."""

    async def stop_consuming(self) -> None:
        """Stop fetching and wait (bounded) for in-flight batches; publishing still works."""

    async def redeliveries_due(self, subscription: Subscription) -> None:
        """Return once the messages of ``subscription`` an earlier consumer was handed and
        never acknowledged are due again, to be handed out before newer ones: a consumer
        taking over from one that died then keeps their order."""


class UrlOptions:
    """The query-string options of a broker URL that an adapter understands, taken out and
    typed (a bad value is a clear ``ValueError``); the rest of the URL is left in ``url`` for
    the client library."""

    def __init__(self, url: str, known: Iterable[str]) -> None:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        names = set(known)
        self._values = {k: v for k, v in query if k in names}
        rest = urlencode([(k, v) for k, v in query if k not in names])
        self.url = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
        self.netloc = parts.netloc

    def text(self, name: str, default: str = "") -> str:
        return self._values.get(name) or default

    def integer(self, name: str, default: int) -> int:
        return int(self.number(name, default))

    def number(self, name: str, default: float) -> float:
        value = self._values.get(name)
        if not value:
            return default
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            raise ValueError(f"broker URL option {name}={value!r} is not a number") from None

    def flag(self, name: str) -> bool:
        return self._values.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


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

    def keep_going(self) -> bool:
        """Whether a loop should fetch another batch. On Python 3.11 a library's ``wait_for``
        can swallow the cancellation of the task running it (CPython gh-86296); a loop that
        asks here each round re-raises a pending cancellation instead of running forever."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        return not self.stopping.is_set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask loops to stop after their current batch and wait (bounded) until they have."""
        self.stopping.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
