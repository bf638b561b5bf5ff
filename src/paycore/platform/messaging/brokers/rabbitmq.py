"""RabbitMQ adapter (aio-pika, robust connection): an exchange per topic, a quorum queue per group.

Topology:

- ``ensure_topic(topic)`` declares a durable exchange of type ``topic`` named exactly like the
  topic. It carries ``alternate-exchange=paycore.unrouted.<topic>``: a durable fanout exchange
  bound to the durable quorum queue of the same name. A message published while no queue is
  bound to the topic (after ``ensure_topic``, before the first ``subscribe``) is therefore kept
  there instead of being dropped. ``subscribe`` binds its queue first (from then on nothing new
  lands in the holding queue), then hands the held messages to its handler, then consumes its
  own queue, so per-key order holds across the switch. Held messages go to whichever group
  subscribes first (two groups subscribing for the first time at once may split them); if that
  consumer dies before acking, they wait in the holding queue for the next one. Exchanges keep
  nothing else: a group added while another is already bound receives only what is published
  after its own queue is bound.
- ``publish`` sends persistent messages (``delivery_mode=2``), with a per-message TTL
  (``expiration``) on a topic with a retention, on a channel with publisher confirms, all of a
  batch in flight at once, and returns when every one is confirmed. The routing key is the
  envelope key (or the topic when it has none); the key also travels in the ``paycore-key``
  header, the id in the ``message_id`` property and the ``message-id`` header.
  Messages are mandatory: if the broker can route one nowhere (an exchange declared by someone
  else without the alternate exchange, no queue bound) ``publish`` raises instead of losing it.
- ``subscribe`` declares a durable quorum queue named ``subscription.queue_name`` and binds it
  to the topic's exchange with routing key ``#``. ``subscription.queue`` may name a queue that
  foreign producers fill straight through the default exchange and that someone else already
  declared (often as a classic queue): when declaring it as quorum fails with
  PRECONDITION_FAILED it is used as it is (passive declare), still bound to the exchange.
  Consumption uses manual acks with ``basic.qos`` prefetch; a batch is acked after the handler
  returns and nacked with ``requeue=True`` if it raises (the loop then pauses ~1 s so a broken
  handler does not spin). Unacked messages go back to the queue
  when the channel or connection closes (cancelled task, dead process).

Received messages: ``Delivery.id`` is the ``message-id`` header, else the ``message_id``
property, else (a foreign producer that sets neither) ``rabbit:`` + the SHA-256 of the body, so
identical foreign bodies share an id and are deduplicated as one message (clients such as
aio-pika/aiormq stamp a random ``message_id`` on everything they publish: such a message keeps it
across redeliveries, not across the producer re-sending it). ``Delivery.key`` is the
``paycore-key`` header, else the routing key of a message that came through an exchange with a
routing key other than the topic. ``Delivery.attempt`` is ``x-delivery-count + 1`` (quorum
queues count redeliveries), else 2 for a redelivered message of a classic queue, else 1.

RabbitMQ 4.x gives quorum queues a default delivery limit of 20, after which a message that keeps
failing is dropped; paycore retries inside ``Consumer`` so a batch is only nacked when the whole
batch handling breaks (database down), but operators should raise or disable that limit with a
policy if such outages can last long.

URL options (query string, removed before connecting; other query options go to aio-pika):
``prefetch`` messages a consumer may hold unacked (default ``2 * subscription.batch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aio_pika
from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel, AbstractRobustConnection
from aiormq.exceptions import ChannelInvalidStateError, ChannelPreconditionFailed

from paycore.platform.failures import CONNECT_TIMEOUT_SECONDS
from paycore.platform.messaging.bus import (
    MESSAGE_ID,
    BatchHandler,
    ConsumeLoops,
    Delivery,
    Envelope,
    Retention,
    Subscription,
    UrlOptions,
)

log = logging.getLogger(__name__)

_KEY_HEADER = "paycore-key"
_QUORUM = {"x-queue-type": "quorum"}
_BIND_ALL = "#"
# Set by the broker; republishing them (dead letters carry headers) would fake a redelivery.
_BROKER_HEADERS = ("x-delivery-count", "x-death", "x-first-death-", "x-last-death-")
_FIRST_WAIT_SECONDS = 1.0  # an idle loop looks at ``stopping`` at least this often
_FILL_WAIT_SECONDS = 0.05  # once a message is in, wait this long for more to fill the batch
_RETRY_PAUSE_SECONDS = 1.0  # after a failed batch, so a broken handler does not spin


def unrouted_name(topic: str) -> str:
    """Alternate exchange (and its queue) keeping the topic's messages no queue was bound for."""
    return f"paycore.unrouted.{topic}"


class RabbitBus:
    def __init__(
        self, url: str, *, client_name: str = "paycore", retention: Retention | None = None
    ) -> None:
        options = UrlOptions(url, ("prefetch",))
        self._retention = dict(retention or {})
        self._prefetch = options.integer("prefetch", 0) or None
        self._url = options.url
        self._name = client_name
        self._conn: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._exchanges: dict[str, Any] = {}
        self._loops = ConsumeLoops()

    async def connect(self) -> None:
        """Connect within ``CONNECT_TIMEOUT_SECONDS``, else a ``ConnectionError`` (aiormq's
        are) or a ``TimeoutError``; once connected, aio-pika reconnects by itself."""
        self._conn = await aio_pika.connect_robust(
            self._url,
            client_properties={"connection_name": self._name},
            reconnect_interval=1.0,
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
        self._publisher = await self._conn.channel(publisher_confirms=True, on_return_raises=True)

    async def redeliveries_due(self, subscription: Subscription) -> None:
        """Nothing to wait for: RabbitMQ returns the messages of a consumer whose connection ended
        to the queue at once, and a quorum queue hands out returned messages before others."""

    async def stop_consuming(self) -> None:
        await self._loops.stop()

    async def close(self) -> None:
        await self._loops.stop()
        if self._conn is not None and not self._conn.is_closed:
            await self._conn.close()

    async def ensure_topic(self, topic: str) -> None:
        if topic in self._exchanges:
            return
        hold = unrouted_name(topic)
        async with self._scratch() as channel:
            await channel.declare_exchange(hold, ExchangeType.FANOUT, durable=True, robust=False)
        await self._declare_queue(hold)
        async with self._scratch() as channel:
            await (await channel.get_queue(hold, ensure=False)).bind(hold, "", robust=False)
        try:
            async with self._scratch() as channel:
                await channel.declare_exchange(
                    topic,
                    ExchangeType.TOPIC,
                    durable=True,
                    arguments={"alternate-exchange": hold},
                    robust=False,
                )
        except ChannelPreconditionFailed as exc:  # declared by someone else: use it as it is
            log.warning(
                "exchange exists with other settings; using it as it is",
                extra={"exchange": topic, "detail": str(exc)},
            )
            async with self._scratch() as channel:
                await channel.declare_exchange(topic, passive=True, robust=False)
        assert self._publisher is not None, "connect() first"
        self._exchanges[topic] = await self._publisher.get_exchange(topic, ensure=False)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        pending = []
        for env in envelopes:
            await self.ensure_topic(env.topic)
            headers: dict[str, Any] = {**env.headers, MESSAGE_ID: env.id}
            if env.key is not None:
                headers[_KEY_HEADER] = env.key
            message = Message(
                env.body,
                headers=headers,
                message_id=env.id,
                delivery_mode=DeliveryMode.PERSISTENT,
                expiration=self._retention.get(env.topic),  # dropped unconsumed after it
            )
            exchange = self._exchanges[env.topic]
            pending.append(exchange.publish(message, routing_key=env.key or env.topic))
        # Each publish resolves on the broker's basic.ack (persisted to the quorum queues) and
        # raises on basic.nack or an unroutable return.
        await asyncio.gather(*pending)

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        topic, name = subscription.topic, subscription.queue_name
        await self.ensure_topic(topic)
        await self._declare_queue(name)
        async with self._scratch() as channel:
            await (await channel.get_queue(name, ensure=False)).bind(topic, _BIND_ALL, robust=False)

        assert self._conn is not None, "connect() first"
        buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            buffer.put_nowait(message)

        async with self._loops.running():
            channel = await self._conn.channel(publisher_confirms=False)
            try:
                await channel.set_qos(prefetch_count=self._prefetch or subscription.batch * 2)
                # Now that our queue is bound nothing new lands in the holding queue: hand over
                # what it kept (all older than anything in our queue), then consume our queue.
                hold = await channel.get_queue(unrouted_name(topic), ensure=False)
                while self._loops.keep_going():
                    msgs = await _get_batch(hold, subscription.batch)
                    if not msgs:
                        break
                    await self._handle(topic, msgs, handler)
                # Passive: a reconnect re-declares and re-consumes it without argument clashes.
                queue = await channel.declare_queue(name, passive=True)
                await queue.consume(on_message, no_ack=False)
                while self._loops.keep_going():
                    msgs = await _next_batch(buffer, subscription.batch)
                    if msgs:
                        await self._handle(topic, msgs, handler)
            finally:
                # Closing the channel hands every unacked message back to its queue.
                with contextlib.suppress(Exception):
                    await channel.close()

    async def _handle(
        self, topic: str, msgs: Sequence[AbstractIncomingMessage], handler: BatchHandler
    ) -> None:
        """Run the handler on a batch; ack it if it returns, else requeue it and pause a bit."""
        try:
            await handler([_delivery(topic, m) for m in msgs])
        except Exception:
            log.exception("batch failed; redelivering", extra={"topic": topic})
            await _settle(msgs, ack=False)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_RETRY_PAUSE_SECONDS):
                    await self._loops.stopping.wait()
            return
        await _settle(msgs, ack=True)

    @contextlib.asynccontextmanager
    async def _scratch(self) -> AsyncIterator[Any]:
        """A short-lived channel for declarations that may fail (a failure closes the channel)."""
        assert self._conn is not None, "connect() first"
        channel = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _declare_queue(self, name: str) -> None:
        """Declare a durable quorum queue, or keep the one that exists with other arguments."""
        try:
            async with self._scratch() as channel:
                await channel.declare_queue(name, durable=True, arguments=_QUORUM, robust=False)
        except ChannelPreconditionFailed as exc:
            log.info(
                "queue exists with other settings; using it",
                extra={"queue": name, "detail": str(exc)},
            )
            async with self._scratch() as channel:
                await channel.declare_queue(name, passive=True, robust=False)


async def _get_batch(queue: Any, size: int) -> list[AbstractIncomingMessage]:
    """Up to ``size`` messages fetched with basic.get (unacked), fewer if the queue runs dry."""
    msgs: list[AbstractIncomingMessage] = []
    while len(msgs) < size:
        msg = await queue.get(no_ack=False, fail=False)
        if msg is None:
            break
        msgs.append(msg)
    return msgs


async def _next_batch(
    buffer: asyncio.Queue[AbstractIncomingMessage], size: int
) -> list[AbstractIncomingMessage]:
    """Up to ``size`` live messages: wait <= 1 s for the first, then ~50 ms for the rest."""
    msgs: list[AbstractIncomingMessage] = []
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
    try:
        async with asyncio.timeout(_FIRST_WAIT_SECONDS):
            msgs.append(await buffer.get())
        async with asyncio.timeout(_FILL_WAIT_SECONDS):
            while len(msgs) < size:
                msgs.append(await buffer.get())
    except TimeoutError:
        pass
    # A message from a channel that died can no longer be acked; the broker redelivers it.
    return [m for m in msgs if _alive(m)]


def _alive(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except ChannelInvalidStateError:
        return False


async def _settle(msgs: Sequence[AbstractIncomingMessage], *, ack: bool) -> None:
    for m in msgs:
        try:
            if ack:
                await m.ack()
            else:
                await m.nack(requeue=True)
        except Exception as exc:  # channel gone: the broker requeues the message itself
            log.warning(
                "could not settle message; it will be redelivered",
                extra={"ack": ack, "detail": repr(exc)},
            )


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _headers(raw: Mapping[str, Any] | None) -> dict[str, str]:
    return {
        k: _text(v)
        for k, v in (raw or {}).items()
        if v is not None and not k.startswith(_BROKER_HEADERS)
    }


def _delivery(topic: str, msg: AbstractIncomingMessage) -> Delivery:
    raw = msg.headers or {}
    headers = _headers(raw)
    msg_id = headers.get(MESSAGE_ID) or msg.message_id
    if _KEY_HEADER in headers:
        key: str | None = headers[_KEY_HEADER]
    elif msg.exchange and msg.routing_key and msg.routing_key != topic:
        key = msg.routing_key
    else:
        key = None
    count = raw.get("x-delivery-count")  # quorum queues count returns; classic ones only flag
    attempt = count + 1 if isinstance(count, int) else (2 if msg.redelivered else 1)
    return Delivery(
        topic=topic,
        body=msg.body,
        id=msg_id or f"rabbit:{hashlib.sha256(msg.body).hexdigest()}",
        key=key,
        headers=headers,
        attempt=attempt,
    )
