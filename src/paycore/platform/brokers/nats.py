"""NATS JetStream adapter: one file-backed stream per topic, durable pull consumers, explicit ack.

URL options (query string): ``ack_wait`` seconds before an unacked message is redelivered
(default 30), ``replicas`` for clustered JetStream (default 1).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from paycore.platform.bus import (
    MESSAGE_ID,
    BatchHandler,
    ConsumeLoops,
    Delivery,
    Envelope,
    Subscription,
    UrlOptions,
)

log = logging.getLogger(__name__)

_DEDUP_HEADER = "Nats-Msg-Id"
_KEY_HEADER = "paycore-key"
_NAK_DELAY_SECONDS = 1.0


def stream_name(topic: str) -> str:
    """JetStream names may not contain dots, wildcards or spaces."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topic)


class NatsBus:
    def __init__(self, url: str, *, client_name: str = "paycore") -> None:
        options = UrlOptions(url, ("ack_wait", "replicas"))
        self._url = options.url
        self._ack_wait = options.number("ack_wait", 30.0)
        self._replicas = options.integer("replicas", 1)
        self._name = client_name
        self._nc: Any = None
        self._js: Any = None
        self._known: set[str] = set()
        self._loops = ConsumeLoops()

    async def connect(self) -> None:
        self._nc = await nats.connect(
            self._url, name=self._name, max_reconnect_attempts=-1, reconnect_time_wait=0.5
        )
        self._js = self._nc.jetstream(timeout=10)

    async def stop_consuming(self) -> None:
        await self._loops.stop()

    async def close(self) -> None:
        await self._loops.stop()
        # Consumers have stopped and every publish was awaited to its ack, so a plain close
        # loses nothing (drain would wait up to 30 s on the idle pull subscriptions).
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def ensure_topic(self, topic: str) -> None:
        if topic in self._known:
            return
        config = StreamConfig(
            name=stream_name(topic),
            subjects=[topic],
            storage=StorageType.FILE,
            num_replicas=self._replicas,
            duplicate_window=120.0,
        )
        try:
            await self._js.add_stream(config)
        except BadRequestError as exc:  # already exists with another config: keep it
            log.info("stream exists", extra={"stream": config.name, "detail": str(exc)})
        self._known.add(topic)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        futures = []
        for env in envelopes:
            await self.ensure_topic(env.topic)
            headers = {**env.headers, MESSAGE_ID: env.id, _DEDUP_HEADER: env.id}
            if env.key is not None:
                headers[_KEY_HEADER] = env.key
            futures.append(await self._js.publish_async(env.topic, env.body, headers=headers))
        # Each future resolves with the stream's PubAck (or raises): the write is stored.
        await asyncio.gather(*futures)

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        await self.ensure_topic(subscription.topic)
        durable = stream_name(subscription.queue_name)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=-1,
            max_ack_pending=max(1000, subscription.batch * 10),
        )
        psub = await self._js.pull_subscribe(
            subscription.topic,
            durable=durable,
            stream=stream_name(subscription.topic),
            config=config,
        )
        async with self._loops.running():
            while self._loops.keep_going():
                try:
                    msgs = await psub.fetch(subscription.batch, timeout=1.0)
                except (NatsTimeout, TimeoutError):  # nothing to fetch within the wait
                    continue
                deliveries = [self._delivery(subscription.topic, m) for m in msgs]
                try:
                    await handler(deliveries)
                except Exception:
                    log.exception("batch failed; redelivering", extra={"topic": subscription.topic})
                    for m in msgs:
                        await m.nak(delay=_NAK_DELAY_SECONDS)
                    continue
                for m in msgs:
                    await m.ack()

    @staticmethod
    def _delivery(topic: str, msg: Any) -> Delivery:
        headers = dict(msg.headers or {})
        meta = msg.metadata
        msg_id = headers.get(MESSAGE_ID) or headers.get(_DEDUP_HEADER)
        return Delivery(
            topic=topic,
            body=msg.data,
            id=msg_id or f"nats:{meta.stream}:{meta.sequence.stream}",
            key=headers.get(_KEY_HEADER),
            headers=headers,
            attempt=meta.num_delivered,
        )
