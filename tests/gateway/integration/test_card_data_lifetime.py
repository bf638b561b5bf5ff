"""How long card data lives (issue 22, item 12), through a real NATS JetStream and PostgreSQL:
the CVV never leaves the API, not even sealed (no stream message, dead letter, table or log line
holds it), and the streams that carry sealed cards keep them for the card retention only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterator

import nats
import orjson
import pytest
from servers import Server
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.gateway import consumers, messages, service, store
from paycore.gateway.domain import Card
from paycore.gateway.processes import card_retention
from paycore.platform.cards import CardKeyError, Hasher, Keyring
from paycore.platform.clock import utcnow
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.brokers.nats import stream_name
from paycore.platform.messaging.consumer import Consumer, RetryPolicy
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.messaging.relay import Relay
from paycore.platform.observability.logging import JsonFormatter
from paycore.platform.persistence.uow import Database

KEYS = "c2:" + "D" * 43 + "=,c1:" + "E" * 43 + "="
UNKNOWN_KEY = "c9:" + "F" * 43 + "="  # seals one card the processor cannot open
# Distinctive CVVs (no amount, month or year of this test looks like them).
CARDS = [
    ("4111111111111111", "739"),
    ("378282246310005", "8614"),  # amex: 4 digits
    ("5555555555554444", "52"),  # a CVV too short: still never kept
    ("6362970000457013", "946"),
]
CVVS = [cvv for _, cvv in CARDS]


def cvv_in(data: str) -> list[str]:
    """The CVVs found in ``data`` as values of their own (not inside longer runs of base64 or
    hex digits: ids, timestamps, ciphertexts)."""
    return [
        cvv
        for cvv in CVVS
        if re.search(rf"(?<![0-9A-Za-z+/-]){cvv}(?![0-9A-Za-z+/=-])", data) is not None
    ]


class Captured(logging.Handler):
    """Every log line of the test as the processes write them (JSON, with the extras)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Captured]:
    handler, root = Captured(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def stream_bodies(url: str, topic: str) -> tuple[float, list[bytes]]:
    """The stream's max age (seconds, 0 for none) and every message it holds."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream_name(topic))
        bodies = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                bodies.append((await js.get_msg(stream_name(topic), seq)).data or b"")
        return float(info.config.max_age or 0), bodies
    finally:
        await nc.close()


def opened(rings: list[Keyring], body: bytes) -> bytes:
    """What a ``transactions`` message's envelope holds, opened with whichever ring can."""
    message = messages.decode_transaction(body)
    for ring in rings:
        with contextlib.suppress(CardKeyError):
            return ring.open(message.card, message.id)
    raise AssertionError(f"no key opens {message.id}")


async def test_the_cvv_exists_only_in_the_api_and_card_streams_have_a_retention(
    engine: AsyncEngine, nats_server: Server, logs: Captured
) -> None:
    keyring, stale, hasher = Keyring.parse(KEYS), Keyring.parse(UNKNOWN_KEY), Hasher("pepper")
    retention = card_retention()
    assert set(retention) == {"transactions", "transactions.dlq"}
    # a stream made before card topics had a retention is given it
    older = create_bus(nats_server.url)
    await older.connect()
    await older.ensure_topic(messages.TRANSACTIONS)
    await older.close()

    bus = create_bus(nats_server.url, client_name="cards", retention=retention)
    await bus.connect()
    relay = Relay(engine, bus, poll_seconds=0.02)
    db = Database(engine, relay.handoff)
    async with db.transaction() as tx:
        shop = await service.create_account(
            tx, name="shop", webhook_url=None, hasher=hasher, keyring=keyring, now=utcnow()
        )
    retry = RetryPolicy(max_attempts=2, base_seconds=0.01, max_seconds=0.02)
    workers = [
        Consumer(subscription=s, handler=h, db=db, bus=bus, retry=retry)
        for s, h in (consumers.processor(keyring), consumers.results())
    ]
    tasks = [asyncio.create_task(job) for job in (relay.run(), *(w.run() for w in workers))]
    writer = service.transaction_writer(db)
    try:
        prepared = [
            service.prepare_transaction(
                shop.row.id,
                10_00 + n,
                Card(number, "Ana Lima", 12, 2031, cvv),
                keyring=stale if n == 0 else keyring,
                hasher=hasher,
                now=utcnow(),
            )
            for n, (number, cvv) in enumerate(CARDS * 3)
        ]
        rows = await asyncio.gather(*(writer.submit(p) for p in prepared))
        ids = {row.id for row in rows}
        deadline = time.monotonic() + 60
        while True:
            async with engine.connect() as conn:
                pending = await conn.scalar(
                    select(func.count())
                    .select_from(store.transactions)
                    .where(store.transactions.c.status == "pending")
                )
                letters = await conn.scalar(select(func.count()).select_from(dead_letters))
            if pending == 1 and letters == 1:  # the one sealed under a key it lacks
                break
            assert time.monotonic() < deadline, (pending, letters)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the dead letter's copy reaches transactions.dlq
    finally:
        await writer.stop()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await bus.close()

    # the streams carrying sealed cards keep them for the card retention; the others as before
    age, published = await stream_bodies(nats_server.url, messages.TRANSACTIONS)
    dlq_age, copies = await stream_bodies(nats_server.url, "transactions.dlq")
    results_age, _ = await stream_bodies(nats_server.url, messages.RESULTS)
    assert (age, dlq_age, results_age) == (168 * 3600, 168 * 3600, 0)

    # every sealed card this test published, on the stream and in the dead letters, opened:
    # the number, the expiry and the CVV's verdict; never the CVV
    async with engine.connect() as conn:
        letters_bodies = list((await conn.execute(select(dead_letters.c.body))).scalars())
        tables = [
            str(tuple(r))
            for table in ("gateway_transactions", "gateway_decisions", "dead_letters", "outbox")
            for r in await conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608
        ]
    mine = [b for b in published + copies if orjson.loads(b).get("id") in ids]
    assert len(mine) == len(ids) + 1  # each transaction once, and the dead letter's copy
    assert len(letters_bodies) == 1
    for body in mine + letters_bodies:
        plain = orjson.loads(opened([keyring, stale], body))
        assert sorted(plain) == ["cvv_ok", "exp_month", "exp_year", "number"]
        assert cvv_in(body.decode()) == []
    # nor in any table or any log line
    assert tables
    assert cvv_in(" ".join(tables)) == []
    assert any("dead-lettered" in line for line in logs.lines)
    assert cvv_in("\n".join(logs.lines)) == []
