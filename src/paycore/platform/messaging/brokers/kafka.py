"""Kafka adapter (aiokafka): one Kafka topic per paycore topic, one consumer group per subscription.

Topology: every paycore topic is a Kafka topic of the same name, created by ``ensure_topic``
through the admin API with ``partitions`` partitions and ``replication`` replicas (an existing
topic is kept as it is). A topic with a retention gets ``retention.ms`` and ``segment.ms`` of
that age (Kafka deletes whole segments: a record lives up to about twice the retention); an
existing topic is given them when first used. The envelope key is the Kafka record key, so
all messages of one key land in one partition and keep their order. The envelope id travels
in the ``message-id`` record header next to the envelope headers (UTF-8 values). A
subscription is a consumer group named ``Subscription.queue_name`` that starts, when new, from
the earliest retained offset.
Offsets are committed by hand, exactly those of a batch, after its handler returned; when the
handler raises, every partition of the batch is rewound to the batch's first offset so the
batch is fetched again at once. A consumer that dies (task cancelled, connection lost) commits
nothing: its partitions go to the next member of the group from the last committed offset.

Records from foreign producers without a ``message-id`` header get the stable id
``kafka:{topic}:{partition}:{offset}``. Kafka keeps no delivery count: ``Delivery.attempt`` is
1, plus the number of times this process rewound the record after a handler error.

Producer: ``acks=all`` and idempotent (a retried send is stored once) wherever the server
supports it. With the default ``idempotence=auto`` a server that refuses the idempotent
producer's InitProducerId (Tansu, the Kafka-protocol broker of the test suite, answers
aiokafka's v0 request with an unknown server error) gets a plain producer instead, with a
warning: a retried send may then store a record twice, which the consumers drop by message id
(inbox). ``idempotence=1`` refuses to start without it, ``idempotence=0`` does not ask. Order
within a partition is kept either way: aiokafka has at most one batch in flight per partition.

URL: ``kafka://host:port[,host2:port2][?options]``. Options (query string), with defaults:
``partitions`` for new topics (3), ``replication`` factor for new topics (1),
``session_timeout_ms`` after which a silent group member is evicted (10000),
``heartbeat_interval_ms`` (3000), ``max_poll_interval_ms`` allowed between fetches, i.e. the
longest a batch handler may run before the member is dropped (300000),
``rebalance_timeout_ms`` the broker waits for members to rejoin (``session_timeout_ms``),
``linger_ms`` the producer waits to fill a batch (5), ``request_timeout_ms`` (30000),
``idempotence`` ``auto``/``1``/``0`` for the idempotent producer (``auto``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError, for_code

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

_FETCH_TIMEOUT_MS = 1000
_STOP_TIMEOUT_SECONDS = 10.0
# Rewind counts kept for attempt numbers; forgotten past this size (attempt falls back to 1).
_MAX_TRACKED_REWINDS = 100_000


IDEMPOTENCE = {"auto": None, "1": True, "true": True, "0": False, "false": False}
"""The ``idempotence`` option's values: None tries the idempotent producer and falls back."""

_OPTIONS = (
    "partitions",
    "replication",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "max_poll_interval_ms",
    "rebalance_timeout_ms",
    "linger_ms",
    "request_timeout_ms",
    "idempotence",
)


class KafkaBus:
    def __init__(
        self, url: str, *, client_name: str = "paycore", retention: Retention | None = None
    ) -> None:
        options = UrlOptions(url, _OPTIONS)
        self._retention = dict(retention or {})
        hosts = options.netloc.rsplit("@", 1)[-1]
        self._bootstrap = [h.strip() for h in hosts.split(",") if h.strip()]
        if not self._bootstrap:
            raise ValueError(f"no broker address in {url!r}")
        self._partitions = options.integer("partitions", 3)
        self._replication = options.integer("replication", 1)
        self._session_timeout_ms = options.integer("session_timeout_ms", 10_000)
        self._heartbeat_interval_ms = options.integer("heartbeat_interval_ms", 3_000)
        self._max_poll_interval_ms = options.integer("max_poll_interval_ms", 300_000)
        self._rebalance_timeout_ms = options.integer(
            "rebalance_timeout_ms", self._session_timeout_ms
        )
        self._linger_ms = options.integer("linger_ms", 5)
        self._request_timeout_ms = options.integer("request_timeout_ms", 30_000)
        self._idempotence = options.text("idempotence", "auto").lower()
        if self._idempotence not in IDEMPOTENCE:
            raise ValueError(
                f"broker URL option idempotence={self._idempotence!r}: use auto, 1 or 0"
            )
        self.idempotent = False  # whether the running producer is
        self._name = client_name
        self._producer: Any = None
        self._admin: Any = None
        # Running consumers, each with its stop task once stopping began.
        self._consumers: dict[Any, asyncio.Future[None] | None] = {}
        self._known: set[str] = set()
        self._topic_lock = asyncio.Lock()
        self._loops = ConsumeLoops()

    async def connect(self) -> None:
        """Connect within ``CONNECT_TIMEOUT_SECONDS``, else a ``ConnectionError`` or a
        ``TimeoutError``."""
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id=f"{self._name}-admin",
            request_timeout_ms=self._request_timeout_ms,
        )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                await self._admin.start()
        except KafkaConnectionError:
            await self._admin.close()
            raise ConnectionError("no bootstrap server answered") from None
        try:
            self._producer = await self._start_producer()
        except BaseException:
            await self._admin.close()
            raise

    async def _start_producer(self) -> Any:
        """The idempotent producer, unless told otherwise or (``auto``) refused by the
        server; then a plain one."""
        if IDEMPOTENCE[self._idempotence] is not False:
            producer = self._producer_of(idempotent=True)
            try:
                await producer.start()
                self.idempotent = True
                return producer
            except KafkaError as exc:
                await producer.stop()
                if IDEMPOTENCE[self._idempotence]:
                    raise
                log.warning(
                    "the Kafka server refused the idempotent producer; publishing without it "
                    "(a retried send may store a record twice: consumers drop repeats by "
                    "message id)",
                    extra={"error": str(exc)},
                )
        producer = self._producer_of(idempotent=False)
        await producer.start()
        return producer

    def _producer_of(self, *, idempotent: bool) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._name,
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=self._linger_ms,
            request_timeout_ms=self._request_timeout_ms,
        )

    async def redeliveries_due(self, subscription: Subscription) -> None:
        """Nothing to wait for: a consumer resumes from the group's last committed offset, in
        order."""

    async def stop_consuming(self) -> None:
        await self._loops.stop()

    async def close(self) -> None:
        await self._loops.stop()
        # Loops that were cancelled stop their own consumer (shielded); wait for those, then
        # stop whatever is left. A stopped consumer leaves its group and commits nothing.
        stops = {self._stop_consumer(consumer) for consumer in list(self._consumers)}
        if stops:
            await asyncio.wait(stops, timeout=_STOP_TIMEOUT_SECONDS)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        if self._admin is not None:
            await self._admin.close()
            self._admin = None

    async def ensure_topic(self, topic: str) -> None:
        if topic in self._known:
            return
        async with self._topic_lock:
            if topic in self._known:
                return
            configs = self._configs(topic)
            new = NewTopic(
                name=topic,
                num_partitions=self._partitions,
                replication_factor=self._replication,
                topic_configs=configs,
            )
            response = await self._admin.create_topics([new])
            for name, code, *rest in response.topic_errors:
                if code == 0:
                    log.info("topic created", extra={"topic": name})
                    continue
                error = for_code(code)
                if error is TopicAlreadyExistsError:
                    if configs:  # made before it had a retention: give it the retention
                        await self._alter(name, configs)
                    continue
                detail = rest[0] if rest else None
                raise error(f"create topic {name!r}: {detail}")
            self._known.add(topic)

    async def _alter(self, topic: str, configs: dict[str, str]) -> None:
        try:
            resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs)
            await self._admin.alter_configs([resource])
        except KafkaError as exc:  # a server that cannot change a topic's configuration
            log.error(
                "topic kept without its retention: set it on the server",
                extra={"topic": topic, "configs": configs, "error": str(exc)},
            )

    def _configs(self, topic: str) -> dict[str, str]:
        """The topic's own configuration: its retention, if it has one."""
        age = self._retention.get(topic)
        if age is None:
            return {}
        millis = str(max(1, round(age * 1000)))
        return {"retention.ms": millis, "segment.ms": millis}

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        futures = []
        for env in envelopes:
            await self.ensure_topic(env.topic)
            headers = [(k, v.encode()) for k, v in env.headers.items() if k != MESSAGE_ID]
            headers.append((MESSAGE_ID, env.id.encode()))
            futures.append(
                await self._producer.send(
                    env.topic,
                    value=env.body,
                    key=env.key.encode() if env.key is not None else None,
                    headers=headers,
                )
            )
        # Each future resolves once the partition leader wrote the batch with acks=all.
        await asyncio.gather(*futures)

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        await self.ensure_topic(subscription.topic)
        consumer = AIOKafkaConsumer(
            subscription.topic,
            bootstrap_servers=self._bootstrap,
            client_id=self._name,
            group_id=subscription.queue_name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=self._heartbeat_interval_ms,
            max_poll_interval_ms=self._max_poll_interval_ms,
            rebalance_timeout_ms=self._rebalance_timeout_ms,
            request_timeout_ms=max(self._request_timeout_ms, self._session_timeout_ms + 5_000),
        )
        self._consumers[consumer] = None
        try:
            await consumer.start()
            async with self._loops.running():
                await self._consume(consumer, subscription, handler)
        finally:
            # Shielded: a cancelled loop (the process "dies") must still leave the group, so
            # its uncommitted records go to the next member without waiting for the session.
            await asyncio.shield(self._stop_consumer(consumer))

    async def _consume(
        self, consumer: Any, subscription: Subscription, handler: BatchHandler
    ) -> None:
        rewinds: dict[tuple[str, int, int], int] = {}
        while self._loops.keep_going():
            try:
                fetched = await consumer.getmany(
                    timeout_ms=_FETCH_TIMEOUT_MS, max_records=subscription.batch
                )
            except KafkaError:
                # aiokafka retries connection problems itself; what surfaces is logged and
                # retried, so a broker restart does not end the subscription.
                log.warning("fetch failed", exc_info=True, extra={"topic": subscription.topic})
                await asyncio.sleep(_FETCH_TIMEOUT_MS / 1000)
                continue
            records = [r for batch in fetched.values() for r in batch]
            if not records:
                continue
            deliveries = [self._delivery(r, rewinds) for r in records]
            try:
                await handler(deliveries)
            except Exception:
                log.exception("batch failed; redelivering", extra={"topic": subscription.topic})
                self._rewind(consumer, fetched, rewinds)
                continue
            for r in records:
                rewinds.pop((r.topic, r.partition, r.offset), None)
            offsets = {tp: batch[-1].offset + 1 for tp, batch in fetched.items() if batch}
            try:
                await consumer.commit(offsets)
            except KafkaError:
                # Partitions moved to another member meanwhile: it resumes from the last
                # committed offset, so these records are delivered again (at least once).
                log.warning(
                    "offset commit failed; batch will be redelivered",
                    exc_info=True,
                    extra={"topic": subscription.topic},
                )

    @staticmethod
    def _rewind(
        consumer: Any,
        fetched: dict[Any, list[Any]],
        rewinds: dict[tuple[str, int, int], int],
    ) -> None:
        if len(rewinds) > _MAX_TRACKED_REWINDS:
            rewinds.clear()
        for tp, batch in fetched.items():
            if not batch:
                continue
            for r in batch:
                key = (r.topic, r.partition, r.offset)
                rewinds[key] = rewinds.get(key, 0) + 1
            try:
                consumer.seek(tp, batch[0].offset)
            except KafkaError:
                # No longer assigned: the new owner starts from the committed offset.
                log.info("partition revoked before rewind", extra={"partition": str(tp)})

    def _stop_consumer(self, consumer: Any) -> asyncio.Future[None]:
        """Stop ``consumer`` once (leaving its group, committing nothing); the stop survives
        cancellation of the caller and ``close()`` waits for it."""
        task = self._consumers.get(consumer)
        if task is None:
            task = asyncio.ensure_future(self._stop_quietly(consumer))
            self._consumers[consumer] = task
            task.add_done_callback(lambda _: self._consumers.pop(consumer, None))
        return task

    @staticmethod
    async def _stop_quietly(consumer: Any) -> None:
        try:
            await asyncio.wait_for(consumer.stop(), _STOP_TIMEOUT_SECONDS)
        except Exception:
            log.warning("consumer stop failed", exc_info=True)

    @staticmethod
    def _delivery(record: Any, rewinds: dict[tuple[str, int, int], int]) -> Delivery:
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        coordinates = (record.topic, record.partition, record.offset)
        return Delivery(
            topic=record.topic,
            body=record.value if record.value is not None else b"",
            id=headers.get(MESSAGE_ID) or "kafka:{}:{}:{}".format(*coordinates),
            key=key,
            headers=headers,
            attempt=1 + rewinds.get(coordinates, 0),
        )
