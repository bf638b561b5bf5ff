"""Idempotent consumer: dedup by message id, retries with backoff, dead letters, replay."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.messaging import deadletters
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import Consumer, RetryPolicy, Verdicts, inbox
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.messaging.relay import LEFTOVER, Relay
from paycore.platform.observability import metrics
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database, Transaction

TOPIC = "shop.orders"
FAST = RetryPolicy(max_attempts=3, base_seconds=0.001, max_seconds=0.002)

_effects_metadata = MetaData()
effects = Table(
    "test_effects",
    _effects_metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(200), nullable=False),
    Column("body", LargeBinary, nullable=False),
)


class Script:
    """A batch handler whose behaviour is chosen by each message's body: it rejects "reject…"
    (no effect, a verdict), and writes the effect of the others first, so a failure after the
    write ("boom…" always, "flaky…" twice) shows whether the write was rolled back. Each batch
    it commits is counted by an after-commit hook."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.correlation: dict[str, str] = {}
        self.fixed = False
        self.committed: list[int] = []  # the size of each batch committed

    async def __call__(self, tx: Transaction, deliveries: list[Delivery]) -> Verdicts:
        verdicts: list[str | None] = []
        for delivery in deliveries:
            self.calls[delivery.id] += 1
            self.correlation[delivery.id] = correlation_id.get()
            if not self.fixed and delivery.body.startswith(b"reject"):
                verdicts.append("bad schema: field 'x' is missing")
                continue
            await tx.execute(insert(effects).values(message_id=delivery.id, body=delivery.body))
            if self.fixed:
                verdicts.append(None)
                continue
            if delivery.body.startswith(b"boom"):
                raise RuntimeError("database on fire")
            if delivery.body.startswith(b"flaky") and self.calls[delivery.id] <= 2:
                raise ConnectionError("transient hiccup")
            verdicts.append(None)
        tx.after_commit(lambda: self.committed.append(len(deliveries)))
        return verdicts


@pytest.fixture
def wakes() -> list[int]:
    """One entry per hand-off of events to the relay: how many."""
    return []


@pytest.fixture
async def db(engine: AsyncEngine, wakes: list[int]) -> Database:
    async with engine.begin() as conn:
        await conn.run_sync(_effects_metadata.create_all)
    return Database(engine, lambda events: wakes.append(len(events)))


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def consumer(db: Database, fake_bus: Any, script: Script) -> Consumer:
    return Consumer(
        subscription=Subscription(TOPIC, "analytics"),
        handler=script,
        db=db,
        bus=fake_bus,
        retry=FAST,
    )


def _d(message_id: str, body: bytes = b"ok", **headers: str) -> Delivery:
    return Delivery(topic=TOPIC, body=body, id=message_id, key="customer-7", headers=headers)


async def _effects(db: Database) -> Counter[str]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(effects.c.message_id))).all()
    return Counter(r.message_id for r in rows)


async def _outbox(db: Database) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(select(outbox).order_by(outbox.c.seq))).all())


async def test_duplicates_in_one_batch_and_across_batches_take_effect_once(
    consumer: Consumer, db: Database, script: Script
) -> None:
    await consumer.handle_batch([_d("m1"), _d("m1"), _d("m2"), _d("m1")])
    assert await _effects(db) == Counter({"m1": 1, "m2": 1})
    await consumer.handle_batch([_d("m2"), _d("m3"), _d("m1")])
    await consumer.handle_batch([_d("m3")])
    assert await _effects(db) == Counter({"m1": 1, "m2": 1, "m3": 1})
    assert script.committed == [2, 1]  # the handler saw only new messages; all-repeats: no call


class Overlapped:
    """A batch handler with an early part, logging what happens in which order; the handler
    of batch "slow…" waits for ``release`` after it began."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.release = asyncio.Event()

    async def early(self, deliveries: Sequence[Delivery]) -> None:
        self.log.append(f"early {deliveries[0].id}")
        await asyncio.sleep(0)
        self.log.append(f"early done {deliveries[0].id}")

    async def __call__(self, tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        name = deliveries[0].id
        self.log.append(f"begin {name}")
        if name.startswith("slow"):
            await self.release.wait()
        await tx.execute(insert(effects).values(message_id=name, body=b"x"))
        if name.startswith("boom"):
            raise RuntimeError("database on fire")
        self.log.append(f"end {name}")
        return [None] * len(deliveries)


def overlapped(db: Database, fake_bus: Any, handler: Any) -> Consumer:
    subscription = Subscription(TOPIC, "ledger", overlap=True, idempotent=True)
    return Consumer(subscription=subscription, handler=handler, db=db, bus=fake_bus, retry=FAST)


async def test_batches_given_before_the_last_is_handled_wait_their_turn_in_order(
    db: Database, fake_bus: Any
) -> None:
    handler = Overlapped()
    consumer = overlapped(db, fake_bus, handler)
    first = asyncio.create_task(consumer.handle_batch([_d("slow-1")]))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(consumer.handle_batch([_d("b-2")]))
    third = asyncio.create_task(consumer.handle_batch([_d("c-3")]))
    await asyncio.sleep(0.05)
    assert handler.log == ["begin slow-1", "early b-2", "early done b-2"]  # c-3: b-2 not begun
    handler.release.set()
    await asyncio.gather(first, second, third)
    begun = [line for line in handler.log if line.startswith(("begin", "end"))]
    assert begun == ["begin slow-1", "end slow-1", "begin b-2", "end b-2", "begin c-3", "end c-3"]
    assert handler.log.index("early c-3") > handler.log.index("begin b-2")
    assert await _effects(db) == Counter({"slow-1": 1, "b-2": 1, "c-3": 1})


async def test_an_early_part_not_done_when_the_turn_comes_is_cancelled(
    db: Database, fake_bus: Any
) -> None:
    handler = Overlapped()
    blocked = asyncio.Event()

    async def early(deliveries: Sequence[Delivery]) -> None:
        handler.log.append(f"early {deliveries[0].id}")
        await blocked.wait()  # never set: the turn comes first
        handler.log.append("never")

    handler.early = early  # type: ignore[method-assign]
    consumer = overlapped(db, fake_bus, handler)
    first = asyncio.create_task(consumer.handle_batch([_d("slow-1")]))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(consumer.handle_batch([_d("b-2")]))
    await asyncio.sleep(0.05)
    handler.release.set()
    await asyncio.gather(first, second)
    assert handler.log == ["begin slow-1", "early b-2", "end slow-1", "begin b-2", "end b-2"]


async def test_a_batch_that_fails_lets_the_next_have_its_turn(db: Database, fake_bus: Any) -> None:
    handler = Overlapped()
    consumer = overlapped(db, fake_bus, handler)
    first = asyncio.create_task(consumer.handle_batch([_d("boom-1")]))
    second = asyncio.create_task(consumer.handle_batch([_d("b-2")]))
    await asyncio.gather(first, second)
    assert handler.log.index("end b-2") > handler.log.index("begin boom-1")
    assert (await _effects(db))["b-2"] == 1
    assert (await _effects(db))["boom-1"] == 0  # rolled back, then dead-lettered after retries


async def test_after_commit_hooks_run_only_for_a_batch_that_committed(
    consumer: Consumer, db: Database, script: Script
) -> None:
    await consumer.handle_batch([_d("ok-1"), _d("x1", b"boom")])  # fails, then one by one
    assert await _effects(db) == Counter({"ok-1": 1})
    assert script.committed == [1]  # ok-1 alone; never the failed batch nor boom


async def test_rejected_message_goes_to_dead_letters_with_reason_and_raw_bytes(
    consumer: Consumer, db: Database, script: Script
) -> None:
    raw = b"reject\xff\x00 not even utf-8"
    await consumer.handle_batch([_d("bad-1", raw, **{"correlation-id": "cid-9"})])

    assert await _effects(db) == Counter()  # its partial effect was rolled back
    [letter] = await deadletters.list_letters(db)
    assert letter.topic == TOPIC
    assert letter.consumer == "shop.orders.analytics"
    assert letter.message_id == "bad-1"
    assert letter.key == "customer-7"
    assert letter.body == raw
    assert letter.error == "bad schema: field 'x' is missing"
    assert letter.attempts == 1
    assert orjson.loads(letter.headers) == {"correlation-id": "cid-9"}
    assert letter.replayed_at is None

    [row] = await _outbox(db)
    assert row.topic == "shop.orders.dlq"
    assert row.body == raw
    assert row.key == "customer-7"
    assert row.id == f"dlq-{letter.id}"
    headers = orjson.loads(row.headers)
    assert headers["paycore-error"] == "bad schema: field 'x' is missing"
    assert headers["paycore-consumer"] == "shop.orders.analytics"

    # redelivered: already settled, neither handled nor dead-lettered again
    await consumer.handle_batch([_d("bad-1", raw)])
    assert len(await deadletters.list_letters(db)) == 1
    assert len(await _outbox(db)) == 1
    assert script.calls["bad-1"] == 1


async def test_an_idempotent_subscription_keeps_no_inbox_and_dead_letters_once(
    db: Database, fake_bus: Any, script: Script
) -> None:
    """Its handler knows a repeat by the message's own keys: every delivery reaches it (a
    handler that did not know would take effect twice), no inbox row is written, and a
    message it refuses is dead-lettered once however often it comes."""
    consumer = Consumer(
        subscription=Subscription(TOPIC, "ledger", idempotent=True),
        handler=script,
        db=db,
        bus=fake_bus,
        retry=FAST,
    )
    await consumer.handle_batch([_d("m1"), _d("bad", b"reject")])
    await consumer.handle_batch([_d("m1"), _d("bad", b"reject")])
    assert script.calls == Counter({"m1": 2, "bad": 2})
    assert await _effects(db) == Counter({"m1": 2})  # this handler does not know repeats
    assert [letter.message_id for letter in await deadletters.list_letters(db)] == ["bad"]
    assert len(await _outbox(db)) == 1
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(inbox))).scalar() == 0


async def test_rejection_in_a_batch_keeps_the_other_effects(
    consumer: Consumer, db: Database
) -> None:
    await consumer.handle_batch([_d("ok-1"), _d("bad", b"reject"), _d("ok-2")])
    assert await _effects(db) == Counter({"ok-1": 1, "ok-2": 1})
    assert [letter.message_id for letter in await deadletters.list_letters(db)] == ["bad"]


async def test_each_outcome_of_a_batch_is_counted(consumer: Consumer) -> None:
    def counted(outcome: str) -> float:
        labels = {"topic": TOPIC, "consumer": consumer.name, "outcome": outcome}
        return REGISTRY.get_sample_value("paycore_messages_consumed_total", labels) or 0.0

    outcomes = ("ok", "dead_letter", "duplicate")
    before = {outcome: counted(outcome) for outcome in outcomes}
    batch = [_d("n-1"), _d("n-2", b"reject"), _d("n-3"), _d("n-1"), _d("n-4"), _d("n-5", b"reject")]
    await consumer.handle_batch(batch)
    await consumer.handle_batch([_d("n-3")])
    after = {outcome: counted(outcome) - before[outcome] for outcome in outcomes}
    assert after == {"ok": 3, "dead_letter": 2, "duplicate": 2}


async def test_transient_failures_are_retried_until_success(
    consumer: Consumer, db: Database, script: Script
) -> None:
    await consumer.handle_batch([_d("f1", b"flaky")])
    assert await _effects(db) == Counter({"f1": 1})
    assert script.calls["f1"] == 3
    assert await deadletters.list_letters(db, include_replayed=True) == []
    assert await _outbox(db) == []


async def test_always_failing_message_is_dead_lettered_after_max_attempts(
    consumer: Consumer, db: Database, script: Script
) -> None:
    await consumer.handle_batch([_d("x1", b"boom!")])
    assert await _effects(db) == Counter()
    assert script.calls["x1"] >= FAST.max_attempts
    [letter] = await deadletters.list_letters(db)
    assert letter.error == "RuntimeError: database on fire"
    assert letter.attempts == FAST.max_attempts
    assert letter.body == b"boom!"
    [row] = await _outbox(db)
    assert row.topic == "shop.orders.dlq"
    assert orjson.loads(row.headers)["paycore-error"] == "RuntimeError: database on fire"

    calls = script.calls["x1"]
    await consumer.handle_batch([_d("x1", b"boom!")])
    assert script.calls["x1"] == calls  # settled: not tried again
    assert len(await deadletters.list_letters(db)) == 1


async def test_one_failing_message_does_not_block_the_batch(
    consumer: Consumer, db: Database
) -> None:
    batch = [_d("ok-1"), _d("f1", b"flaky"), _d("x1", b"boom"), _d("ok-2"), _d("ok-1")]
    await consumer.handle_batch(batch)
    assert await _effects(db) == Counter({"ok-1": 1, "f1": 1, "ok-2": 1})
    [letter] = await deadletters.list_letters(db)
    assert letter.message_id == "x1"


async def test_correlation_id_follows_the_message(consumer: Consumer, script: Script) -> None:
    await consumer.handle_batch([_d("c1", **{"correlation-id": "req-42"})])
    await consumer.handle_batch([_d("c2")])  # no correlation id: its message id stands for one
    assert script.correlation == {"c1": "req-42", "c2": "c2"}
    await consumer.handle_batch([_d("c3", **{"correlation-id": "req-7"}), _d("c4")])
    assert (script.correlation["c3"], script.correlation["c4"]) == ("req-7", "req-7")  # the first's
    assert correlation_id.get() == ""


async def test_replay_puts_the_letter_back_once(
    consumer: Consumer, db: Database, script: Script, fake_bus: Any
) -> None:
    await consumer.handle_batch([_d("bad-1", b"reject me", **{"correlation-id": "cid-1"})])
    [letter] = await deadletters.list_letters(db)
    assert len(await _outbox(db)) == 1  # the .dlq copy

    assert await deadletters.replay(db, [letter.id]) == 1
    rows = await _outbox(db)
    assert len(rows) == 2
    replayed = rows[-1]
    assert replayed.topic == TOPIC
    assert replayed.id == f"replay-{letter.id}"
    assert replayed.body == b"reject me"
    assert replayed.key == "customer-7"
    headers = orjson.loads(replayed.headers)
    assert headers[deadletters.REPLAY_OF] == "bad-1"
    assert headers["correlation-id"] == "cid-1"

    assert await deadletters.list_letters(db) == []
    [marked] = await deadletters.list_letters(db, include_replayed=True)
    assert marked.replayed_at is not None

    with pytest.raises(deadletters.NotReplayable) as again:
        await deadletters.replay(db, [letter.id])
    assert (again.value.unknown, again.value.replayed) == ([], [letter.id])
    with pytest.raises(deadletters.NotReplayable) as unknown:
        await deadletters.replay(db, ["no-such-letter"])
    assert (unknown.value.unknown, unknown.value.replayed) == (["no-such-letter"], [])
    assert len(await _outbox(db)) == 2

    # the relay publishes both; the consumer, now fixed, handles the replay under its new id
    relay = Relay(db.engine, fake_bus)
    assert await relay.relay_once() == 2
    assert await relay.backlog() == 0
    assert [e.topic for e in fake_bus.published] == ["shop.orders.dlq", TOPIC]
    envelope = fake_bus.published[-1]
    script.fixed = True
    await consumer.handle_batch(
        [Delivery(envelope.topic, envelope.body, envelope.id, envelope.key, envelope.headers)]
    )
    assert await _effects(db) == Counter({f"replay-{letter.id}": 1})


async def test_list_letters_filters_by_topic(db: Database, fake_bus: Any) -> None:
    def make(topic: str) -> Consumer:
        return Consumer(
            subscription=Subscription(topic, "g"),
            handler=Script(),
            db=db,
            bus=fake_bus,
            retry=FAST,
        )

    await make("a.topic").handle_batch([Delivery("a.topic", b"reject", "1", None, {})])
    await make("b.topic").handle_batch([Delivery("b.topic", b"reject", "1", None, {})])
    assert [x.topic for x in await deadletters.list_letters(db, topic="a.topic")] == ["a.topic"]
    assert len(await deadletters.list_letters(db)) == 2
    async with db.connect() as conn:
        dlq = (
            await conn.execute(select(outbox.c.topic, func.count()).group_by(outbox.c.topic))
        ).all()
    assert dict((t, n) for t, n in dlq) == {"a.topic.dlq": 1, "b.topic.dlq": 1}


def test_retry_delay_is_exponential_with_jitter_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=0.1, max_seconds=1.0)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = {policy.delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(delays) > 1  # jittered


async def test_the_relay_gets_the_events_of_a_batch_that_wrote_some(
    consumer: Consumer, db: Database, wakes: list[int]
) -> None:
    await consumer.handle_batch([_d("w1"), _d("w2")])  # effects only, no event
    assert wakes == []
    await consumer.handle_batch([_d("w3", b"reject me")])  # its dead letter's copy is an event
    assert wakes == [1]
    assert [row.topic for row in await _outbox(db)] == ["shop.orders.dlq"]
    await consumer.handle_batch([_d("w4")])
    assert wakes == [1]


async def test_a_polling_round_leaves_fresh_rows_to_the_relay_of_their_writer(
    db: Database, fake_bus: Any
) -> None:
    async with db.transaction() as tx:
        fresh = tx.publish(TOPIC, b"fresh")
        left = tx.publish(TOPIC, b"left by a crashed process")
    async with db.transaction() as tx:
        await tx.execute(
            update(outbox).where(outbox.c.id == left).values(created_at=utcnow() - LEFTOVER * 2)
        )
    relay = Relay(db.engine, fake_bus)
    assert await relay.relay_once(older_than=LEFTOVER) == 1  # a poll: only the old row
    assert [e.id for e in fake_bus.published] == [left]
    assert await relay.relay_once() == 1  # woken by its writer's commit: the rest
    assert [e.id for e in fake_bus.published] == [left, fresh]
    assert await relay.backlog() == 0


async def test_a_polling_round_that_finds_no_old_row_leaves_the_backlog_gauge(
    db: Database, fake_bus: Any
) -> None:
    async with db.transaction() as tx:
        tx.publish(TOPIC, b"fresh")
    relay = Relay(db.engine, fake_bus)
    assert await relay.backlog() == 1
    assert await relay.relay_once(older_than=LEFTOVER) == 0
    assert metrics.outbox_backlog._value.get() == 1  # the fresh row still waits
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0
    assert metrics.outbox_backlog._value.get() == 0


def test_whatever_a_decoder_raises_is_a_refusal_with_a_reason() -> None:
    def decode(body: bytes) -> int:
        if body == b"bad":
            raise LookupError("one of its own refusals")
        return int(body)  # b"x": a ValueError it did not foresee

    decoded = decode_each([b"1", b"bad", b"x", b"2"], decode, own=LookupError)
    assert decoded.values == [(0, 1), (3, 2)]
    assert decoded.verdicts == [
        None,
        "one of its own refusals",
        "undecodable (ValueError): invalid literal for int() with base 10: b'x'",
        None,
    ]
