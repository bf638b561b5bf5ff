"""Gateway transactions on PostgreSQL through a real broker (NATS JetStream, Kafka, RabbitMQ and
Redis Streams), on the topics ``transactions`` and ``transactions_result``: every transaction
decided once with the rule's exact message (and counted once in the decision metric), every
result applied once, every webhook delivered once and signed; the card number never on the wire
or in a table."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import date

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from servers import Server
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.gateway import consumers, messages, service, store
from paycore.gateway.crypto import verify_webhook
from paycore.gateway.domain import Card, decide
from paycore.gateway.webhook_targets import WebhookTargets
from paycore.gateway.webhooks import WebhookDispatcher
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.clock import utcnow
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Bus, Delivery, Subscription
from paycore.platform.messaging.consumer import Consumer, RetryPolicy
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.messaging.relay import Relay
from paycore.platform.persistence.uow import Database

KEYS = "k2:" + "A" * 43 + "=,k1:" + "B" * 43 + "="
CARDS = [
    ("4111111111111111", "123"),
    ("378282246310005", "1234"),
    ("6362970000457013", "321"),
    ("6062825624254001", "555"),
    ("4111111111111112", "123"),  # Luhn
    ("5555555555554444", "12"),  # CVV
]
AMOUNTS = [99, 100, 5_000, 100_000, 100_001]
HOOKS_ADDRESS = "93.184.215.14"  # what the merchant's webhook host resolves to, here
SUBSCRIBE_SECONDS = 2.0


@pytest.fixture(params=["nats", "kafka", "rabbitmq", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The flow runs once on each broker the platform supports."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    return server.url


async def public_dns(host: str, port: int) -> list[str]:
    return [HOOKS_ADDRESS]


def decisions_counted() -> Counter[str]:
    return Counter(
        {
            status: REGISTRY.get_sample_value("paycore_gateway_decisions_total", {"status": status})
            or 0.0
            for status in ("approved", "rejected")
        }
    )


class Tap:
    """Records every message of the two topics as it crossed the broker (own groups)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def handle(self, deliveries: list[Delivery]) -> None:
        self.bodies.extend(d.body for d in deliveries)


async def test_transactions_are_decided_once_over_the_broker(
    engine: AsyncEngine, broker_url: str
) -> None:
    keyring, hasher = Keyring.parse(KEYS), Hasher("integration-pepper")
    async with Database(engine).transaction() as tx:
        shops = [
            await service.create_account(
                tx,
                name=f"shop-{n}",
                webhook_url="https://hooks.example/{n}" if n == 0 else None,
                hasher=hasher,
                keyring=keyring,
                now=utcnow(),
            )
            for n in range(2)
        ]
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    bus: Bus = create_bus(broker_url)
    await bus.connect()
    for topic in (messages.TRANSACTIONS, messages.RESULTS):
        await bus.ensure_topic(topic)
    relay = Relay(engine, bus, poll_seconds=0.02)
    db = Database(engine, relay.handoff)
    client = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    dispatcher = WebhookDispatcher(
        db,
        keyring,
        client,
        retry=RetryPolicy(3, 0.05, 0.1),
        targets=WebhookTargets(allow_private=False, resolve=public_dns),
        poll_seconds=0.05,
    )
    counted_before = decisions_counted()
    retry = RetryPolicy(max_attempts=3, base_seconds=0.01, max_seconds=0.05)
    processor = Consumer(
        db=db,
        bus=bus,
        retry=retry,
        **dict(zip(("subscription", "handler"), consumers.processor(keyring), strict=True)),
    )
    results = consumers.results(webhooks_queued=dispatcher.notify)
    applier = Consumer(
        db=db,
        bus=bus,
        retry=retry,
        **dict(zip(("subscription", "handler"), results, strict=True)),
    )
    assert (processor.subscription.topic, processor.subscription.group) == (
        "transactions",
        "gateway-processor",
    )
    assert (applier.subscription.topic, applier.subscription.group) == (
        "transactions_result",
        "gateway",
    )
    tap = Tap()
    tasks = [
        asyncio.create_task(job)
        for job in (
            processor.run(),
            applier.run(),
            dispatcher.run(),
            bus.subscribe(Subscription(messages.TRANSACTIONS, f"tap-{time.time_ns()}"), tap.handle),
            bus.subscribe(Subscription(messages.RESULTS, f"tap-{time.time_ns()}"), tap.handle),
        )
    ]
    writer = service.transaction_writer(db)
    try:
        # RabbitMQ hands a group only what is published once its queue is bound (what came
        # before the first binding goes to whichever group binds first, a tap maybe): the
        # relay publishes once every group has subscribed
        await asyncio.sleep(SUBSCRIBE_SECONDS)
        tasks.append(asyncio.create_task(relay.run()))
        planned = [
            (shops[n % 2].row.id, AMOUNTS[n % len(AMOUNTS)], CARDS[n % len(CARDS)])
            for n in range(120)
        ]
        rows = await asyncio.gather(
            *(
                writer.submit(
                    service.prepare_transaction(
                        account,
                        cents,
                        Card(number, "Ana Lima", 12, 2031, cvv),
                        keyring=keyring,
                        hasher=hasher,
                        now=utcnow(),
                    )
                )
                for account, cents, (number, cvv) in planned
            )
        )
        expected = {
            row.id: decide(Card(number, "Ana Lima", 12, 2031, cvv), cents, date.today())
            for row, (_, cents, (number, cvv)) in zip(rows, planned, strict=True)
        }
        hooked = {row.id for row in rows if row.account_id == shops[0].row.id}
        deadline = time.monotonic() + 90
        while True:
            async with engine.connect() as conn:
                pending = await conn.scalar(
                    select(func.count())
                    .select_from(store.transactions)
                    .where(store.transactions.c.status == "pending")
                )
            if pending == 0 and len(received) >= len(hooked):
                break
            assert time.monotonic() < deadline, (pending, len(received))
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)  # anything decided or sent twice would show up now
    finally:
        await writer.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.aclose()
        await bus.close()

    async with engine.connect() as conn:
        stored = {
            r.id: (r.status, r.error_message)
            for r in await conn.execute(select(store.transactions))
        }
        decisions = await conn.scalar(select(func.count()).select_from(store.decisions))
        letters = await conn.scalar(select(func.count()).select_from(dead_letters))
        dumped = []
        for table in ("gateway_transactions", "gateway_decisions", "outbox", "inbox"):
            dumped += [str(tuple(r)) for r in await conn.execute(text(f"SELECT * FROM {table}"))]  # noqa: S608
    dump = " ".join(dumped)
    assert stored == {i: (d.status, d.error_message) for i, d in expected.items()}
    assert decisions == len(expected)
    assert letters == 0
    counted = decisions_counted()
    counted.subtract(counted_before)
    assert counted == Counter(d.status for d in expected.values())  # once each
    # each webhook once, signed with the account's secret, sent to the address checked
    assert Counter(orjson.loads(r.content)["id"] for r in received) == Counter(hooked)
    for request in received:
        assert (request.url.host, request.headers["host"]) == (HOOKS_ADDRESS, "hooks.example")
        assert verify_webhook(
            shops[0].webhook_secret,
            request.headers["paycore-signature"],
            request.content,
            now=int(time.time()),
        )
    # the wire: the results have the seed's shape; no card number anywhere
    results = [orjson.loads(b) for b in tap.bodies if b"error_message" in b]
    assert {tuple(sorted(r)) for r in results} == {("error_message", "id", "status")}
    for number, _ in CARDS:
        assert all(number.encode() not in body for body in tap.bodies)
        assert number not in dump
    # (the broker is shared by the session's tests: only this test's transactions count)
    sealed = [
        m for b in tap.bodies if b"ciphertext" in b if (m := orjson.loads(b))["id"] in expected
    ]
    assert len(sealed) == len(expected)
    assert {s["card"]["kid"] for s in sealed} == {"k2"}  # the current key seals
