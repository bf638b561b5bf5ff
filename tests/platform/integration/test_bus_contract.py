"""One contract, every broker: the same tests run against real NATS, RabbitMQ, Kafka and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import orjson
import pytest
from bus_kit import connected
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.ids import uuid7
from paycore.platform.messaging import deadletters
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Bus, Delivery, Envelope, Subscription, dead_letter_topic
from paycore.platform.messaging.consumer import Consumer, RetryPolicy, Verdicts
from paycore.platform.messaging.relay import Relay
from paycore.platform.observability import tracing
from paycore.platform.persistence.db import create_engine, metadata
from paycore.platform.persistence.uow import Database, Transaction

BROKERS = ["nats", "rabbitmq", "kafka", "redis"]
# Short redelivery timers so "the consumer died" tests finish quickly.
FAST_REDELIVERY = {
    "nats": "?ack_wait=2",
    "rabbitmq": "",
    "kafka": "?session_timeout_ms=6000&heartbeat_interval_ms=500",
    "redis": "?claim_idle_ms=1500",
}

_effects_metadata = MetaData()  # the test's own table stays out of paycore's schema
effects = Table(
    "contract_effects",
    _effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("body", String(200), nullable=False),
)


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest) -> str:
    server = request.getfixturevalue(f"{request.param}_server")
    return str(server.url) + FAST_REDELIVERY[request.param]


@pytest.fixture
def topic() -> str:
    return f"contract.t{uuid7().replace('-', '')[-12:]}"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(_effects_metadata.create_all)
    yield eng
    await eng.dispose()


@contextlib.asynccontextmanager
async def consuming(
    bus: Bus, subscription: Subscription, handler: Callable[[Sequence[Delivery]], Awaitable[None]]
) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(bus.subscribe(subscription, handler))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def envelopes(topic: str, count: int, key: str | None = None) -> list[Envelope]:
    return [
        Envelope(
            topic=topic, body=orjson.dumps({"n": n}), id=uuid7(), key=key, headers={"h": str(n)}
        )
        for n in range(count)
    ]


async def test_published_messages_arrive_in_order_with_ids_and_headers(
    broker_url: str, topic: str
) -> None:
    sent = envelopes(topic, 50, key="k")
    got: list[Delivery] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        got.extend(batch)

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        async with consuming(bus, Subscription(topic, "g1"), handler):
            await bus.publish(sent)
            await eventually(lambda: len(got) >= 50)
    assert [d.id for d in got] == [e.id for e in sent]
    assert [orjson.loads(d.body)["n"] for d in got] == list(range(50))
    assert all(d.headers["h"] == str(i) for i, d in enumerate(got))
    assert all(d.key == "k" for d in got)


async def published_then_held_by_a_dying_consumer(
    url: str, sent: list[Envelope], subscription: Subscription
) -> list[str]:
    """Publish ``sent``; a consumer takes a batch and "dies" in it (its handler never returns,
    then its connection goes): the ids of the batch it held."""
    held: list[str] = []

    async def dies(batch: Sequence[Delivery]) -> None:
        held.extend(d.id for d in batch)
        await asyncio.Event().wait()

    async with connected(url) as bus:
        await bus.ensure_topic(subscription.topic)
        await bus.publish(sent)
    dead = create_bus(url, client_name="dying")
    await dead.connect()
    async with consuming(dead, subscription, dies):
        await eventually(lambda: len(held) > 0)
    await dead.close()
    return held


async def test_batch_of_a_consumer_that_dies_before_ack_is_delivered_again(
    broker_url: str, topic: str
) -> None:
    sent = envelopes(topic, 10)
    first_seen = await published_then_held_by_a_dying_consumer(
        broker_url, sent, Subscription(topic, "g1")
    )
    got: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        got.extend(d.id for d in batch)

    async with connected(broker_url) as bus, consuming(bus, Subscription(topic, "g1"), handler):
        await eventually(lambda: set(got) >= {e.id for e in sent}, timeout=60)
    assert set(first_seen) <= set(got)


@pytest.mark.parametrize("broker", ["nats", "rabbitmq", "kafka"])
async def test_a_consumer_taking_over_gets_what_the_dead_one_held_first(
    request: pytest.FixtureRequest, broker: str, topic: str
) -> None:
    """What an exclusive subscription relies on: once ``redeliveries_due`` returns, the new
    consumer gets the messages the dead one was handed before any newer one, so in order
    (one key: Kafka keeps the order of a partition). RabbitMQ returns them first but not
    always in their order among themselves."""
    url = str(request.getfixturevalue(f"{broker}_server").url) + FAST_REDELIVERY[broker]
    sent = envelopes(topic, 60, key="one-account")
    subscription = Subscription(topic, "g1", batch=10)
    held = await published_then_held_by_a_dying_consumer(url, sent, subscription)
    got: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        got.extend(d.id for d in batch)

    async with connected(url) as bus:
        await bus.redeliveries_due(subscription)
        async with consuming(bus, subscription, handler):
            await eventually(lambda: set(got) >= {e.id for e in sent}, timeout=60)
    first = got[: len(held)]
    assert (set(first) == set(held)) if broker == "rabbitmq" else (first == held)
    assert list(dict.fromkeys(got[len(held) :])) == [e.id for e in sent[len(held) :]]


async def test_a_batch_whose_handler_raises_is_delivered_again(broker_url: str, topic: str) -> None:
    sent = envelopes(topic, 3)
    calls: list[list[str]] = []

    async def flaky(batch: Sequence[Delivery]) -> None:
        calls.append([d.id for d in batch])
        if len(calls) == 1:
            raise RuntimeError("transient")

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        async with consuming(bus, Subscription(topic, "g1"), flaky):
            await bus.publish(sent)
            await eventually(
                lambda: {i for c in calls[1:] for i in c} >= {e.id for e in sent}, timeout=30
            )
    assert set(calls[0]) <= {i for c in calls[1:] for i in c}


async def test_an_overlapping_subscription_gets_each_message_once_and_acks_it(
    broker_url: str, topic: str
) -> None:
    """``Subscription.overlap``: NATS hands the next batch over while the last is handled (two
    at most); the others one at a time. Each batch is acknowledged once handled: nothing comes
    twice, and a consumer that comes after finds nothing left."""
    sent = envelopes(topic, 60)
    subscription = Subscription(topic, "g1", batch=10, overlap=True)
    got: list[str] = []
    in_flight, most = 0, 0

    async def handler(batch: Sequence[Delivery]) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        got.extend(d.id for d in batch)
        in_flight -= 1

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        await bus.publish(sent)
        async with consuming(bus, subscription, handler):
            await eventually(lambda: len(got) >= len(sent), timeout=60)
            await asyncio.sleep(0.5)
    assert sorted(got) == sorted(e.id for e in sent)
    assert most == (2 if broker_url.startswith("nats") else 1)
    later: list[str] = []

    async def after(batch: Sequence[Delivery]) -> None:
        later.extend(d.id for d in batch)

    async with connected(broker_url) as bus, consuming(bus, subscription, after):
        await asyncio.sleep(3)  # past NATS's ack_wait here: anything unacknowledged is back
    assert later == []


@pytest.mark.parametrize("broker", ["nats", "rabbitmq", "redis"])
async def test_a_topic_with_a_retention_drops_what_is_older_than_it(
    request: pytest.FixtureRequest, broker: str, topic: str
) -> None:
    """Messages older than their topic's retention are gone, consumed or not (card data must
    not outlive it); a younger one is delivered. Kafka deletes whole segments on its own
    schedule (minutes): its topic configuration is checked in test_kafka_specifics instead."""
    broker_url = str(request.getfixturevalue(f"{broker}_server").url)
    old, fresh = envelopes(topic, 3), envelopes(topic, 1)
    got: list[str] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        got.extend(d.id for d in batch)

    async with connected(broker_url, retention={topic: 1.0}) as bus:
        await bus.ensure_topic(topic)
        await bus.publish(old)
        await asyncio.sleep(2.5)
        await bus.publish(fresh)
        async with consuming(bus, Subscription(topic, "late"), handler):
            await eventually(lambda: len(got) >= 1)
            await asyncio.sleep(1.0)  # anything older would have come by now
    assert got == [fresh[0].id]


async def test_messages_of_one_key_keep_their_order(broker_url: str, topic: str) -> None:
    sent = [
        Envelope(topic=topic, body=orjson.dumps({"n": n}), id=uuid7(), key=f"key-{n % 3}")
        for n in range(60)
    ]
    got: dict[str, list[int]] = defaultdict(list)

    async def handler(batch: Sequence[Delivery]) -> None:
        for d in batch:
            got[d.key or ""].append(orjson.loads(d.body)["n"])

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        async with consuming(bus, Subscription(topic, "g1"), handler):
            await bus.publish(sent)
            await eventually(lambda: sum(len(v) for v in got.values()) >= 60)
    for key, numbers in got.items():
        assert numbers == sorted(numbers), key


# --- the consumer runtime on top of the broker: dedup, retries, dead letters -------------


async def count_effects(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(effects))).scalar_one())


async def test_duplicate_message_ids_take_effect_once(
    broker_url: str, topic: str, engine: AsyncEngine
) -> None:
    async def handler(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        for delivery in deliveries:
            await tx.execute(insert(effects).values(body=delivery.body.decode()))
        return [None] * len(deliveries)

    one = Envelope(topic=topic, body=b"once", id=uuid7())
    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        consumer = Consumer(
            subscription=Subscription(topic, "g1"), handler=handler, db=Database(engine), bus=bus
        )
        task = asyncio.create_task(consumer.run())
        await bus.publish([one])
        await bus.publish([one, Envelope(topic=topic, body=b"other", id=uuid7())])
        await bus.publish([one])
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while await count_effects(engine) < 2:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # give stray duplicates time to arrive
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    assert await count_effects(engine) == 2


async def test_poison_and_exhausted_messages_become_dead_letters_and_the_rest_flows(
    broker_url: str, topic: str, engine: AsyncEngine
) -> None:
    attempts: dict[bytes, int] = defaultdict(int)

    async def handler(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        verdicts: list[str | None] = []
        for delivery in deliveries:
            attempts[delivery.body] += 1
            if delivery.body == b"garbage":
                verdicts.append("not JSON")
                continue
            if delivery.body == b"always-fails":
                raise RuntimeError("database said no")
            if delivery.body == b"fails-twice" and attempts[delivery.body] <= 2:
                raise RuntimeError("transient")
            await tx.execute(insert(effects).values(body=delivery.body.decode()))
            verdicts.append(None)
        return verdicts

    bodies = [b"ok-1", b"garbage", b"fails-twice", b"always-fails", b"ok-2"]
    dlq: list[Delivery] = []

    async def dlq_handler(batch: Sequence[Delivery]) -> None:
        dlq.extend(batch)

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        await bus.ensure_topic(dead_letter_topic(topic))
        relay = Relay(engine, bus, poll_seconds=0.05)
        consumer = Consumer(
            subscription=Subscription(topic, "g1"),
            handler=handler,
            db=Database(engine, relay.handoff),
            bus=bus,
            retry=RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.05),
        )
        tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]
        async with consuming(bus, Subscription(dead_letter_topic(topic), "ops"), dlq_handler):
            await bus.publish([Envelope(topic=topic, body=b, id=uuid7()) for b in bodies])
            await eventually(lambda: len(dlq) >= 2)
            deadline = asyncio.get_running_loop().time() + 30
            while await count_effects(engine) < 3:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async with engine.connect() as conn:
        stored = sorted(r[0] for r in await conn.execute(select(effects.c.body)))
    assert stored == ["fails-twice", "ok-1", "ok-2"]
    letters = {r.body: r for r in await deadletters.list_letters(Database(engine))}
    assert set(letters) == {b"garbage", b"always-fails"}
    assert letters[b"garbage"].error == "not JSON"
    assert "database said no" in letters[b"always-fails"].error
    assert letters[b"always-fails"].attempts == 3
    assert sorted(d.body for d in dlq) == [b"always-fails", b"garbage"]
    assert all(d.headers.get("paycore-error") for d in dlq)


async def test_outbox_rows_reach_the_broker_once_and_leave_the_outbox(
    broker_url: str, topic: str, engine: AsyncEngine
) -> None:
    async with Database(engine).transaction() as tx:
        ids = [tx.publish(topic, f"e{n}".encode(), key="k") for n in range(25)]
    got: list[Delivery] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        got.extend(batch)

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        async with consuming(bus, Subscription(topic, "g1"), handler):
            relay = Relay(engine, bus)
            assert await relay.relay_once() == 25
            assert await relay.relay_once() == 0
            await eventually(lambda: len(got) >= 25)
            await asyncio.sleep(0.3)
        assert await relay.backlog() == 0
    assert [d.id for d in got] == ids


async def test_an_events_traceparent_reaches_the_consumer_which_continues_its_trace(
    broker_url: str, topic: str, engine: AsyncEngine
) -> None:
    """Written in a hop (a request) through the outbox, relayed, consumed: the header arrives
    as it was written and the consumer's hop is the next span of that trace."""
    hop = tracing.continued(None)
    token = tracing.current.set(hop)
    try:
        async with Database(engine).transaction() as tx:
            tx.publish(topic, b"traced", key="k")
    finally:
        tracing.current.reset(token)
    seen: list[tuple[str | None, tracing.TraceContext | None]] = []

    async def handler(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        seen.extend((d.headers.get(tracing.TRACEPARENT), tracing.current.get()) for d in deliveries)
        return [None] * len(deliveries)

    async with connected(broker_url) as bus:
        await bus.ensure_topic(topic)
        consumer = Consumer(
            subscription=Subscription(topic, "g1"), handler=handler, db=Database(engine), bus=bus
        )
        task = asyncio.create_task(consumer.run())
        try:
            assert await Relay(engine, bus).relay_once() == 1
            await eventually(lambda: len(seen) >= 1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    [(header, continued)] = seen
    assert header == hop.traceparent
    assert continued is not None
    assert (continued.trace_id, continued.parent_id) == (hop.trace_id, hop.span_id)
