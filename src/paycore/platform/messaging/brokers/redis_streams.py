"""Redis Streams adapter: one stream per topic, one consumer group per subscription, XACK after
the handler returns.

Topology: the stream key is the topic name (with the optional ``prefix`` in front). Each entry
has the fields ``id`` (message id), ``key`` (only when the envelope has one), ``headers`` (JSON
object of strings) and ``body`` (raw bytes). A subscription is the consumer group
``Subscription.queue_name``, created at subscribe time from id ``0`` (``XGROUP CREATE ... 0
MKSTREAM``) so a new group reads everything the stream still retains. Each subscribe loop is
its own group consumer named ``{client_name}-{hostname}-{pid}-{random}``.

Consuming: entries another consumer has held unacknowledged for ``claim_idle_ms`` (it died, or
its handler is slower than that) are taken over with XAUTOCLAIM, which bumps their delivery
count; then new entries are read with XREADGROUP (COUNT = batch, BLOCK 1 s). A batch is XACKed
only after the handler returns. If the handler raises, nothing is acked: the batch stays in
this consumer's pending list and is read again (``XREADGROUP ... 0``) about a second later,
before any new entry, so per-key order holds within one consumer. With several consumers in
one group Redis hands entries out round-robin: there is no per-key order across consumers,
and a reclaimed entry arrives after younger ones. ``Delivery.attempt`` is the delivery count
from XPENDING for redelivered entries, 1 for fresh ones. Entries without an ``id`` field
(foreign producers) get the id ``redis:{stream}:{entry_id}``; their body is the ``body`` field
or, without one, the JSON object of all fields. Consumers left behind with nothing pending
are deleted: our own on a clean stop, anyone idle for over an hour when a subscription starts.

Durability: ``publish`` returns when Redis has answered every XADD, i.e. the entry is in
memory on the primary. It survives a restart only through the append-only file: with
``appendonly yes`` and the default ``appendfsync everysec`` Redis fsyncs once per second, so a
crash of the machine (not just the process) can lose up to about a second of acknowledged
writes; ``appendfsync always`` closes that window at a throughput cost. Replicas are
asynchronous; ``WAIT`` is not used.

Needs Redis 6.2+ (XAUTOCLAIM). URL: ``redis://[user:password@]host:port/db?options``
(``rediss://`` for TLS). Options:

- ``claim_idle_ms``: milliseconds an entry may stay unacknowledged by a consumer before another
  consumer of the group takes it over (default 30000). Must exceed the slowest batch.
- ``maxlen``: approximate cap on entries per stream (``XADD MAXLEN ~``). Default: no trimming,
  because trimming drops entries whether or not every group has consumed them; set it only
  with a margin over the worst consumer lag. Trim retained streams yourself otherwise
  (e.g. ``XTRIM MINID`` below the oldest pending/last-delivered id of all groups).
- ``prefix``: prepended verbatim to every stream key, e.g. ``paycore:`` (default none).

A topic with a retention is trimmed by age instead (``MINID``, exactly: entry ids are the
milliseconds Redis added them at): on every publish to it, and when a process first uses it,
so an idle stream is trimmed at the next start.

Every other query option goes to redis-py unchanged (``max_connections``, ``protocol``,
``health_check_interval``...). Each running subscription holds one pool connection while it
blocks. No ``socket_timeout`` is set: redis-py then wraps every send in ``asyncio.wait_for``,
which on Python 3.11 can swallow a task cancellation (CPython gh-86296), so cancelled
publishers and consumers might not stop. Dead connections are detected by TCP keepalive
(idle 10 s, 3 probes 5 s apart) instead. Pass ``socket_timeout`` only on Python 3.12+.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

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

_ID_FIELD = b"id"
_KEY_FIELD = b"key"
_HEADERS_FIELD = b"headers"
_BODY_FIELD = b"body"
_BLOCK_MS = 1000
_RETRY_DELAY_SECONDS = 1.0
_PRUNE_IDLE_MS = 3_600_000
_OPTIONS = ("claim_idle_ms", "maxlen", "prefix")

# Delete consumers of the group that have nothing pending and have been idle for longer
# than ARGV[2] ms (ARGV[3], if given, restricts it to that one consumer). Atomic, so an
# entry can never be in flight for a consumer while it is being deleted.
_DROP_IDLE_CONSUMERS = """
local dropped = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2])
      and (ARGV[3] == '' or info['name'] == ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    dropped = dropped + 1
  end
end
return dropped
"""

Entry = tuple[bytes, dict[bytes, bytes]]


def _consumer_name(client_name: str) -> str:
    raw = f"{client_name}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    return re.sub(r"\s", "_", raw)


def _keepalive_options() -> dict[int, int]:
    """Notice a silently dead server within ~25 s (Linux option names; absent ones skipped)."""
    wanted = (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
    return {getattr(socket, name): value for name, value in wanted if hasattr(socket, name)}


def _stream_entries(reply: Any) -> list[Entry]:
    """Entries of a single-stream XREADGROUP reply, RESP2 (list) or RESP3 (dict) shaped."""
    if not reply:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    out: list[Entry] = []
    for _stream, entries in items:
        if entries and isinstance(entries[0], list):  # RESP3 legacy shape wraps once more
            entries = entries[0]
        out.extend((entry_id, fields) for entry_id, fields in entries if entry_id is not None)
    return out


def _decode_headers(raw: bytes | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {
        str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in parsed.items()
    }


class RedisStreamsBus:
    def __init__(
        self, url: str, *, client_name: str = "paycore", retention: Retention | None = None
    ) -> None:
        options = UrlOptions(url, _OPTIONS)
        self._retention = dict(retention or {})
        self._url = options.url
        self._claim_idle_ms = options.integer("claim_idle_ms", 30000)
        self._maxlen = options.integer("maxlen", 0) or None
        self._prefix = options.text("prefix")
        # Look for dead consumers' entries a few times per claim_idle_ms, at most every 5 s.
        self._claim_every = min(max(self._claim_idle_ms / 4000, 0.1), 5.0)
        self._name = client_name
        self._client: Any = None
        self._drop_idle: Any = None
        self._known: set[str] = set()
        self._loops = ConsumeLoops()

    def _stream(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    async def connect(self) -> None:
        """Connect within ``CONNECT_TIMEOUT_SECONDS``, else a ``ConnectionError`` or a
        ``TimeoutError``."""
        self._client = aioredis.from_url(
            self._url,
            client_name=re.sub(r"\s", "_", self._name),
            socket_connect_timeout=10.0,
            socket_keepalive=True,
            socket_keepalive_options=_keepalive_options(),
            health_check_interval=30,
        )
        self._drop_idle = self._client.register_script(_DROP_IDLE_CONSUMERS)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await self._client.ping()
        except RedisConnectionError as exc:  # refused, unknown host, credentials refused
            raise ConnectionError(str(exc)) from exc

    async def redeliveries_due(self, subscription: Subscription) -> None:
        """Nothing to wait for: entries a dead consumer left pending are claimed after
        ``claim_idle_ms`` while newer ones are read, so across a takeover Redis Streams keep
        the order only of what was acknowledged."""

    async def stop_consuming(self) -> None:
        await self._loops.stop()

    async def close(self) -> None:
        await self._loops.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ensure_topic(self, topic: str) -> None:
        # A stream needs no declaration: XADD creates it, and subscribe creates the group with
        # MKSTREAM reading from 0, so entries added before the first subscribe are delivered.
        if topic in self._known:
            return
        if (oldest := self._oldest_kept(topic)) is not None:
            await self._client.xtrim(self._stream(topic), minid=oldest, approximate=False)
        self._known.add(topic)

    def _oldest_kept(self, topic: str) -> str | None:
        """The id below which a topic with a retention drops its entries (None: keeps all)."""
        age = self._retention.get(topic)
        if age is None:
            return None
        return f"{max(0, int((time.time() - age) * 1000))}-0"

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for env in envelopes:
                await self.ensure_topic(env.topic)
                fields: dict[bytes, bytes | str] = {_ID_FIELD: env.id}
                if env.key is not None:
                    fields[_KEY_FIELD] = env.key
                fields[_HEADERS_FIELD] = orjson.dumps(dict(env.headers))
                fields[_BODY_FIELD] = env.body
                if (oldest := self._oldest_kept(env.topic)) is not None:
                    pipe.xadd(self._stream(env.topic), fields, minid=oldest, approximate=False)
                else:
                    pipe.xadd(
                        self._stream(env.topic), fields, maxlen=self._maxlen, approximate=True
                    )
            # One round trip; every reply is the new entry id or the error for that XADD.
            replies = await pipe.execute(raise_on_error=False)
        failed = [
            (e, r) for e, r in zip(envelopes, replies, strict=True) if isinstance(r, Exception)
        ]
        if failed:
            env, error = failed[0]
            log.error(
                "publish failed",
                extra={"topic": env.topic, "message_id": env.id, "failed": len(failed)},
            )
            raise error

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        await self.ensure_topic(subscription.topic)
        reader = _GroupReader(
            self._client,
            stream=self._stream(subscription.topic),
            group=subscription.queue_name,
            consumer=_consumer_name(self._name),
            batch=subscription.batch,
            claim_idle_ms=self._claim_idle_ms,
            claim_every=self._claim_every,
        )
        await reader.create_group()
        with contextlib.suppress(ResponseError):
            await self._drop_idle(keys=[reader.stream], args=[reader.group, _PRUNE_IDLE_MS, ""])
        task = asyncio.current_task()
        async with self._loops.running():
            while not self._loops.stopping.is_set():
                if task is not None and task.cancelling():
                    # A cancellation was requested but swallowed on the way (asyncio.wait_for
                    # on Python 3.11, in a handler or a library): honour it here.
                    raise asyncio.CancelledError
                try:
                    entries, counts = await reader.next_batch()
                except (RedisConnectionError, RedisTimeoutError):
                    log.warning("redis unavailable; retrying", exc_info=True, extra=reader.extra)
                    reader.own_pending = True
                    await self._pause(_RETRY_DELAY_SECONDS)
                    continue
                if not entries:
                    continue
                deliveries = [
                    self._delivery(subscription.topic, reader.stream, entry_id, fields, counts)
                    for entry_id, fields in entries
                ]
                try:
                    await handler(deliveries)
                except Exception:
                    log.exception("batch failed; redelivering", extra={"topic": subscription.topic})
                    reader.own_pending = True
                    await self._pause(_RETRY_DELAY_SECONDS)
                    continue
                try:
                    await reader.ack(entries)
                except (RedisConnectionError, RedisTimeoutError):
                    log.warning("ack failed; redelivering", exc_info=True, extra=reader.extra)
                    reader.own_pending = True
                    await self._pause(_RETRY_DELAY_SECONDS)
        # Clean stop: everything this consumer read is acked (the script checks), so drop it.
        with contextlib.suppress(ResponseError, RedisConnectionError, RedisTimeoutError):
            await self._drop_idle(keys=[reader.stream], args=[reader.group, 0, reader.consumer])

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: it can lose a cancellation
                await self._loops.stopping.wait()

    @staticmethod
    def _delivery(
        topic: str,
        stream: str,
        entry_id: bytes,
        fields: Mapping[bytes, bytes],
        counts: Mapping[bytes, int],
    ) -> Delivery:
        headers = _decode_headers(fields.get(_HEADERS_FIELD))
        raw_id = fields.get(_ID_FIELD)
        msg_id = raw_id.decode() if raw_id else headers.get(MESSAGE_ID)
        if not msg_id:
            msg_id = f"redis:{stream}:{entry_id.decode()}"
        headers[MESSAGE_ID] = msg_id
        body = fields.get(_BODY_FIELD)
        if body is None:  # foreign producer without a body field: the entry as JSON
            body = orjson.dumps(
                {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
            )
        raw_key = fields.get(_KEY_FIELD)
        return Delivery(
            topic=topic,
            body=body,
            id=msg_id,
            key=raw_key.decode() if raw_key is not None else None,
            headers=headers,
            attempt=counts.get(entry_id, 1),
        )


class _GroupReader:
    """One consumer of one group: where its next batch comes from.

    Order of sources: this consumer's own unacked entries after a failed batch (so they come
    back before anything newer), then entries idle in other consumers' pending lists
    (XAUTOCLAIM, checked every ``claim_every`` seconds, or at once while a scan is under way),
    then new entries (XREADGROUP >, blocking up to 1 s).
    """

    def __init__(
        self,
        client: Any,
        *,
        stream: str,
        group: str,
        consumer: str,
        batch: int,
        claim_idle_ms: int,
        claim_every: float,
    ) -> None:
        self._client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.extra = {"stream": stream, "group": group, "consumer": consumer}
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._claim_every = claim_every
        self.own_pending = False
        self._claim_from = "0-0"
        self._next_claim = 0.0

    async def create_group(self) -> None:
        try:
            await self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def next_batch(self) -> tuple[list[Entry], dict[bytes, int]]:
        """Entries to hand to the handler and, for redelivered ones, their delivery counts."""
        try:
            entries, redelivered = await self._fetch()
        except ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            log.warning("consumer group vanished; recreating", extra=self.extra)
            await self.create_group()
            return [], {}
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:  # trimmed or deleted while pending: nothing left to deliver
            await self._client.xack(self.stream, self.group, *gone)
            entries = [(entry_id, fields) for entry_id, fields in entries if fields]
        if not entries or not redelivered:
            return entries, {}
        pending = await self._client.xpending_range(
            self.stream,
            self.group,
            min=entries[0][0],
            max=entries[-1][0],
            count=len(entries),
            consumername=self.consumer,
        )
        return entries, {p["message_id"]: int(p["times_delivered"]) for p in pending}

    async def ack(self, entries: Sequence[Entry]) -> None:
        await self._client.xack(self.stream, self.group, *(entry_id for entry_id, _ in entries))

    async def _fetch(self) -> tuple[list[Entry], bool]:
        if self.own_pending:
            entries = await self._read("0")
            self.own_pending = bool(entries)
            if entries:
                return entries, True
        if self._claim_from != "0-0" or time.monotonic() >= self._next_claim:
            entries = await self._claim()
            if entries:
                return entries, True
        return await self._read(">"), False

    async def _read(self, start: str) -> list[Entry]:
        reply = await self._client.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=self._batch,
            block=_BLOCK_MS if start == ">" else None,
        )
        return _stream_entries(reply)

    async def _claim(self) -> list[Entry]:
        """Take over entries idle for claim_idle_ms in other (dead) consumers' pending lists.
        XAUTOCLAIM scans the pending list in steps; keep its cursor until it wraps to 0-0."""
        reply = await self._client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self._claim_idle_ms,
            start_id=self._claim_from,
            count=self._batch,
        )
        cursor = reply[0]
        self._claim_from = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if self._claim_from == "0-0":
            self._next_claim = time.monotonic() + self._claim_every
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
        if entries:
            log.info("reclaimed idle entries", extra={**self.extra, "count": len(entries)})
        return entries
