"""NATS JetStream adapter: one file-backed stream per topic, durable pull consumers, explicit ack.

A topic with a retention gets a stream with that ``max_age`` (and a duplicate window no longer
than it); a stream created earlier without it is updated to it when the topic is first used.
Streams allow atomic batches, and a stream found without them is given them (kept as it is if
the server cannot), so that a batch published to it is synced to disk once, not per message
(``nats_batch``).

URL options (query string): ``ack_wait`` seconds before an unacked message is redelivered
(default 30), ``replicas`` for clustered JetStream (default 1). A cluster's nodes are listed
in the host part, comma-separated (``nats://n1:4222,n2:4222,n3:4222?replicas=3``): the client
connects to any of them and moves to another when its node goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

from paycore.platform.failures import CONNECT_TIMEOUT_SECONDS
from paycore.platform.messaging.brokers.nats_batch import BATCH_HEADERS, Publisher, ack_all
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

_DEDUP_HEADER = "Nats-Msg-Id"
_KEY_HEADER = "paycore-key"
_NAK_DELAY_SECONDS = 1.0
_FETCH_WAIT_SECONDS = 1.0  # a long poll's lifetime: a consumer's round when nothing comes
_STATUS = "Status"  # header of JetStream's status messages on a pull inbox
_DEDUP_WINDOW_SECONDS = 120.0
_TIMEOUT_SECONDS = 10.0  # for an answer of JetStream's API or a publish's acknowledgement
_SUBJECT = re.compile(r"[^\s*>]+")


def stream_name(topic: str) -> str:
    """JetStream names may not contain dots, wildcards or spaces."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topic)


def servers(url: str) -> list[str]:
    """One URL per node of ``nats://[user:pass@]host1:port1,host2:port2/...``."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    return [
        urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host.strip()}"))
        for host in hosts.split(",")
        if host.strip()
    ]


def deliveries_so_far(msg: Any) -> int:
    """How many times JetStream has delivered ``msg``, this time included, read from its reply
    subject: ``$JS.ACK.<stream>.<consumer>.<delivered>.…`` (9 tokens) or, from a server that
    names domains, ``$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.…`` (11 or
    more). The client's ``metadata`` reads the same subject into dataclasses and a datetime,
    a tenth of a consumer's CPU at 2,000 messages a batch."""
    tokens = (msg.reply or "").split(".")
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[4])
        if len(tokens) >= 11:
            return int(tokens[6])
    return int(msg.metadata.num_delivered)  # the client's error for what is no delivery


class NatsBus:
    def __init__(
        self, url: str, *, client_name: str = "paycore", retention: Retention | None = None
    ) -> None:
        options = UrlOptions(url, ("ack_wait", "replicas"))
        self._retention = dict(retention or {})
        self._servers = servers(options.url)
        self._ack_wait = options.number("ack_wait", 30.0)
        self._replicas = options.integer("replicas", 1)
        self._name = client_name
        self._nc: Any = None
        self._js: Any = None
        self._publisher: Publisher
        self._known: set[str] = set()
        self._atomic: set[str] = set()  # topics whose streams take atomic batches
        self._loops = ConsumeLoops()

    async def connect(self) -> None:
        """Connect, trying for ``CONNECT_TIMEOUT_SECONDS``; then a ``ConnectionError`` (from the
        last failure). Once connected, the client reconnects by itself, forever."""
        failures: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            # Instead of the client's own, which logs a traceback per attempt.
            if self._js is None:
                failures.append(exc)
            else:
                log.warning("NATS client error", extra={"error": str(exc) or repr(exc)})

        self._nc = NatsClient()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await self._nc.connect(
                    self._servers,
                    name=self._name,
                    error_cb=on_error,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                )
        except (OSError, TimeoutError, NatsError) as exc:
            await self._nc.close()
            cause = failures[-1] if failures else exc
            raise ConnectionError(str(cause) or type(cause).__name__) from cause
        self._js = self._nc.jetstream(timeout=_TIMEOUT_SECONDS)
        self._publisher = Publisher(self._nc, _TIMEOUT_SECONDS)
        await self._publisher.open()

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
        if not _SUBJECT.fullmatch(topic):
            raise ValueError(f"{topic!r} is not a topic: no spaces or wildcards")
        max_age = self._retention.get(topic)
        config = StreamConfig(
            name=stream_name(topic),
            subjects=[topic],
            storage=StorageType.FILE,
            num_replicas=self._replicas,
            duplicate_window=min(_DEDUP_WINDOW_SECONDS, max_age or _DEDUP_WINDOW_SECONDS),
            max_age=max_age,
            allow_atomic=True,
        )
        info: StreamInfo | None
        try:
            info = await self._js.add_stream(config)
        except BadRequestError as exc:  # it exists with another config, or another has its subject
            info = await self._adopt(config, exc)
        if info is not None and info.config.allow_atomic:  # a server before 2.12 lacks them
            self._atomic.add(topic)
        self._known.add(topic)

    async def _adopt(self, config: StreamConfig, exc: BadRequestError) -> StreamInfo | None:
        """A stream found with another config than ``config``. One for a topic with a
        retention is made ``config`` (it must not keep messages longer); any other is kept as
        it is, only given atomic batches if it lacks them. None if there is no such stream
        (another stream took the topic's subject: it is published to as it is)."""
        try:
            info: StreamInfo = await self._js.stream_info(config.name)
        except NotFoundError:
            log.warning("stream not made", extra={"stream": config.name, "detail": str(exc)})
            return None
        if config.max_age is not None:
            wanted = config
        elif not info.config.allow_atomic:
            wanted = dataclasses.replace(info.config, allow_atomic=True)
        else:
            return info
        try:
            updated: StreamInfo = await self._js.update_stream(wanted)
            return updated
        except BadRequestError as refused:  # made by someone else, or an older server
            detail = {"stream": config.name, "detail": str(refused)}
            if config.max_age is not None:  # say it loudly
                log.error("stream kept without its retention: it differs in more", extra=detail)
            else:
                log.info("stream kept without atomic batches", extra=detail)
            return info

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        batch = []
        for env in envelopes:
            await self.ensure_topic(env.topic)
            # The id travels once, as JetStream's own dedup header (a delivery reads it back
            # as its id).
            headers = {**env.headers, _DEDUP_HEADER: env.id}
            if env.key is not None:
                headers[_KEY_HEADER] = env.key
            batch.append((env.topic, env.body, headers))
        await self._publisher.publish(batch, self._atomic)  # returns once each is stored

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        await self.ensure_topic(subscription.topic)
        durable = stream_name(subscription.queue_name)
        stream = stream_name(subscription.topic)
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=-1,
            max_ack_pending=max(1000, subscription.batch * 10),
        )
        try:
            await self._js.consumer_info(stream, durable)
        except NotFoundError:
            with contextlib.suppress(BadRequestError):  # created meanwhile by another process
                await self._js.add_consumer(stream, config=config)
        puller = _Puller(self._nc, stream, durable, lambda m: self._delivery(subscription.topic, m))
        await puller.open()
        # With ``overlap``, the batch fetched is handed over while the one before is handled:
        # at most two in flight, the older awaited before the next fetch.
        handling: list[asyncio.Task[None]] = []
        try:
            async with self._loops.running():
                while self._loops.keep_going():
                    fetched = await puller.fetch(subscription.batch, _FETCH_WAIT_SECONDS)
                    if fetched and subscription.overlap:
                        batch = self._handle(subscription.topic, fetched, handler)
                        handling.append(asyncio.create_task(batch))
                    elif fetched:
                        await self._handle(subscription.topic, fetched, handler)
                    while len(handling) > (1 if fetched else 0):
                        await handling[0]
                        handling.pop(0)
                while handling:
                    await handling.pop(0)
        except BaseException:
            # Cut short inside a batch: leave what was fetched pending with it, all due again
            # after ack_wait in the stream's order (a nak now would put it ahead of the batch).
            for task in handling:
                task.cancel()
            await puller.close()
            raise
        for m in await puller.close():  # fetched, never handled: redeliver them now
            with contextlib.suppress(Exception):
                await m.nak()

    async def redeliveries_due(self, subscription: Subscription) -> None:
        """JetStream hands out what is due again before new messages; what the last consumer
        left unacknowledged is due ``ack_wait`` after it was delivered."""
        stream, durable = stream_name(subscription.topic), stream_name(subscription.queue_name)
        try:
            info = await self._js.consumer_info(stream, durable)
        except NotFoundError:
            return
        if not info.num_ack_pending or info.delivered is None:
            return
        delivered = info.delivered.last_active
        since = (datetime.now(UTC) - delivered).total_seconds() if delivered else 0.0
        wait = min(self._ack_wait, max(0.0, self._ack_wait - since)) + _NAK_DELAY_SECONDS
        log.info(
            "waiting for the last consumer's unacknowledged messages to be due again",
            extra={"stream": stream, "messages": info.num_ack_pending, "seconds": wait},
        )
        await asyncio.sleep(wait)

    async def _handle(
        self, topic: str, fetched: list[tuple[Any, Delivery]], handler: BatchHandler
    ) -> None:
        msgs = [m for m, _ in fetched]
        deliveries = [d for _, d in fetched]
        try:
            await handler(deliveries)
        except Exception:
            log.exception("batch failed; redelivering", extra={"topic": topic})
            for m in msgs:
                await m.nak(delay=_NAK_DELAY_SECONDS)
            return
        await ack_all(self._nc, msgs)

    @staticmethod
    def _delivery(topic: str, msg: Any) -> Delivery:
        headers = {k: v for k, v in (msg.headers or {}).items() if k not in BATCH_HEADERS}
        msg_id = headers.get(MESSAGE_ID) or headers.get(_DEDUP_HEADER)
        if not msg_id:  # a foreign producer's: the stream's coordinates are stable
            meta = msg.metadata
            msg_id = f"nats:{meta.stream}:{meta.sequence.stream}"
        return Delivery(
            topic=topic,
            body=msg.data,
            id=msg_id,
            key=headers.get(_KEY_HEADER),
            headers=headers,
            attempt=deliveries_so_far(msg),
        )


class _Puller:
    """Batches of a durable pull consumer, fetched with our own pull requests on one inbox.

    Instead of the client's ``fetch()``, which starts two tasks for every message and, on a
    long poll, holds the first message until the batch is full or the poll expires (up to a
    second of added latency under light load), each message arrives through one callback and
    a fetch returns as soon as there is something to return:

    1. messages already here (delivered for an earlier request) are returned at once;
    2. else a ``no_wait`` request takes what the stream holds now, up to the batch;
    3. else a long poll waits (at most ``wait`` seconds) for the first message to arrive.

    A long poll may outlive its fetch and deliver more messages later; they wait here for the
    next fetch. ``close()`` hands back the messages never fetched, for the caller to nak.

    Each message is made a delivery (``make``) as it arrives: while the caller waits for its
    database with the batch before, not after.
    """

    def __init__(self, nc: Any, stream: str, durable: str, make: Callable[[Any], Delivery]) -> None:
        self._nc = nc
        self._make = make
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox: str = nc.new_inbox()
        self._ready: list[tuple[Any, Delivery]] = []
        self._event = asyncio.Event()  # a message arrived, or a request is over
        self._request_over = False
        self._want = 1 << 62  # messages the waiting fetch needs before it is woken
        self._prefetching = False  # a request for the next batch is out, sent by fetch
        self._error: Exception | None = None
        self._sub: Any = None

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def close(self) -> list[Any]:
        with contextlib.suppress(Exception):
            await self._sub.unsubscribe()
        left, self._ready = self._ready, []
        return [m for m, _ in left]

    async def _on_message(self, msg: Any) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._ready.append((msg, self._make(msg)))
            if len(self._ready) < self._want:
                return  # the waiting fetch needs more: no wake-up per message
        elif status in ("404", "408", "409"):  # no messages, poll expired, request superseded
            self._request_over = True
        elif status == "100":  # heartbeat
            return
        else:  # the consumer or stream is gone, say: the consume loop fails and restarts
            self._error = RuntimeError(f"JetStream pull failed: {status} {msg.headers}")
        self._event.set()

    async def fetch(self, batch: int, wait: float) -> list[tuple[Any, Delivery]]:
        """Up to ``batch`` messages, each with its delivery; empty when none came within
        ``wait`` seconds.

        After a full batch the next one is asked for at once (``no_wait``), before the caller
        handles this one: with a backlog, its messages arrive and are parsed while the batch
        is handled, instead of after."""
        if self._prefetching:
            self._prefetching = False
            await self._wait(wait, until=batch)
        if not self._ready:
            await self._request({"batch": batch, "no_wait": True}, wait, until=batch)
        if not self._ready:
            expires = int(wait * 1_000_000_000)
            await self._request({"batch": batch, "expires": expires}, wait, until=1)
        taken, self._ready = self._ready[:batch], self._ready[batch:]
        if len(taken) == batch and not self._ready:
            self._request_over, self._prefetching = False, True
            await self._send({"batch": batch, "no_wait": True})
        return taken

    async def _request(self, request: dict[str, Any], wait: float, *, until: int) -> None:
        """Send a pull request; wait until ``until`` messages are here, or the request is
        over, or ``wait`` seconds have passed."""
        self._request_over = False
        await self._send(request)
        await self._wait(wait, until=until)

    async def _send(self, request: dict[str, Any]) -> None:
        await self._nc.publish(self._next, orjson.dumps(request), reply=self._inbox)

    async def _wait(self, wait: float, *, until: int) -> None:
        """Until ``until`` messages are here, the request is over, or ``wait`` seconds."""
        self._want = until
        self._event.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while len(self._ready) < until and not (self._request_over or self._error):
                    self._event.clear()
                    await self._event.wait()
        self._want = 1 << 62  # no fetch waiting: messages wake nobody
        if self._error is not None:
            error, self._error = self._error, None
            raise error
