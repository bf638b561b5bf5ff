"""An in-memory broker with the contract of the real ones (``paycore.platform.messaging.bus``),
for unit tests of a whole flow without a server: what is published is kept (``published``) and
delivered to every subscription's group once, in order, in batches; a batch whose handler
raises is delivered again (its ``attempt`` counted), as a broker redelivers what was not
acknowledged. Published envelopes with an id already seen on their topic are dropped, as
JetStream's deduplication window does."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence

from paycore.platform.messaging.bus import BatchHandler, Delivery, Envelope, Subscription


class MemoryBus:
    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.topics: set[str] = set()
        self.connected = False
        self._logs: dict[str, list[Envelope]] = defaultdict(list)
        self._seen: dict[str, set[str]] = defaultdict(set)
        self._positions: dict[str, int] = defaultdict(int)  # per queue: next index to deliver
        self._arrived = asyncio.Condition()
        self._stopping = False

    async def connect(self) -> None:
        self.connected = True

    async def close(self) -> None:
        await self.stop_consuming()
        self.connected = False

    async def ensure_topic(self, topic: str) -> None:
        self.topics.add(topic)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        async with self._arrived:
            for envelope in envelopes:
                self.published.append(envelope)
                if envelope.id not in self._seen[envelope.topic]:
                    self._seen[envelope.topic].add(envelope.id)
                    self._logs[envelope.topic].append(envelope)
            self._arrived.notify_all()

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        """Deliver the topic's messages (from the first one) to the subscription's group
        until ``stop_consuming``; a failed batch is delivered again after a short pause."""
        queue, attempts = subscription.queue_name, 1
        while not self._stopping:
            async with self._arrived:
                await self._arrived.wait_for(
                    lambda: (
                        self._stopping
                        or self._positions[queue] < len(self._logs[subscription.topic])
                    )
                )
                if self._stopping:
                    return
                start = self._positions[queue]
                batch = self._logs[subscription.topic][start : start + subscription.batch]
            deliveries = [
                Delivery(e.topic, e.body, e.id, e.key, dict(e.headers), attempt=attempts)
                for e in batch
            ]
            try:
                await handler(deliveries)
            except Exception:
                attempts += 1
                await asyncio.sleep(0.01)
                continue
            attempts = 1
            self._positions[queue] = start + len(batch)

    async def redeliveries_due(self, subscription: Subscription) -> None:
        return None

    async def stop_consuming(self) -> None:
        self._stopping = True
        with contextlib.suppress(RuntimeError):  # no loop waiting
            async with self._arrived:
                self._arrived.notify_all()

    def pending(self, subscription: Subscription) -> int:
        """Messages of the topic the subscription's group has not yet handled."""
        return len(self._logs[subscription.topic]) - self._positions[subscription.queue_name]
