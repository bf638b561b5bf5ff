"""RabbitMQ-only behaviour of the adapter: foreign queues, topology, early messages, attempts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import ChannelNotFoundEntity
from bus_kit import connected
from pamqp import body as amqp_body
from pamqp import commands, frame
from pamqp import header as amqp_header
from pamqp.exceptions import UnmarshalingException
from servers import HOST, Server

from paycore.platform.ids import uuid7
from paycore.platform.messaging.brokers.rabbitmq import unrouted_name
from paycore.platform.messaging.bus import Bus, Delivery, Envelope, Subscription


def _suffix() -> str:
    return uuid7().replace("-", "")[-12:]


@pytest.fixture
def url(rabbitmq_server: Server) -> str:
    return str(rabbitmq_server.url)


@pytest.fixture
async def raw(url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A plain aio-pika connection playing the foreign producer / the operator."""
    conn = await aio_pika.connect_robust(url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def bus(url: str) -> AsyncIterator[Bus]:
    async with connected(url, client_name="specifics") as bus:
        yield bus


@contextlib.asynccontextmanager
async def consuming(
    bus: Bus, subscription: Subscription, got: list[Delivery], fail_first: bool = False
) -> AsyncIterator[None]:
    calls = 0

    async def handler(batch: Sequence[Delivery]) -> None:
        nonlocal calls
        calls += 1
        got.extend(batch)
        if fail_first and calls == 1:
            raise RuntimeError("transient")

    task = asyncio.create_task(bus.subscribe(subscription, handler))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def eventually(check: object, timeout: float = 20.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def bare_publish(port: int, queue: str, payload: bytes) -> None:
    """Publish like a minimal foreign client: default exchange, no properties at all (aio-pika
    would add a random message_id), waiting for the publisher confirm."""
    reader, writer = await asyncio.open_connection(HOST, port)
    buffered = b""

    async def expect(kind: type) -> None:
        nonlocal buffered
        while True:
            try:
                used, _, value = frame.unmarshal(buffered)
            except UnmarshalingException:
                chunk = await reader.read(65536)
                assert chunk, "connection closed by the broker"
                buffered += chunk
                continue
            buffered = buffered[used:]
            if isinstance(value, kind):
                return

    def send(value: object, channel: int = 0) -> None:
        writer.write(frame.marshal(value, channel))  # type: ignore[arg-type]

    try:
        writer.write(amqp_header.ProtocolHeader().marshal())
        await expect(commands.Connection.Start)
        send(commands.Connection.StartOk(response="\0guest\0guest"))
        await expect(commands.Connection.Tune)
        send(commands.Connection.TuneOk(channel_max=8, frame_max=131072, heartbeat=0))
        send(commands.Connection.Open(virtual_host="/"))
        await expect(commands.Connection.OpenOk)
        send(commands.Channel.Open(), 1)
        await expect(commands.Channel.OpenOk)
        send(commands.Confirm.Select(), 1)
        await expect(commands.Confirm.SelectOk)
        send(commands.Basic.Publish(exchange="", routing_key=queue), 1)
        send(amqp_header.ContentHeader(body_size=len(payload)), 1)
        send(amqp_body.ContentBody(payload), 1)
        await expect(commands.Basic.Ack)
        send(commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0))
        await expect(commands.Connection.CloseOk)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_foreign_message_on_a_preexisting_classic_queue_is_consumed_with_a_stable_id(
    bus: Bus, raw: AbstractRobustConnection, rabbitmq_server: Server
) -> None:
    topic = f"btg.orders.t{_suffix()}"
    queue_name = f"btg-pactual-order-created-{_suffix()}"
    body = b'{"order_id": "A-1", "amount": "10.00"}'
    channel = await raw.channel()
    # Someone else owns this queue: a classic queue, declared before paycore ever ran.
    await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "classic"})
    # The foreign producer publishes straight to it through the default exchange, bare.
    await bare_publish(rabbitmq_server.extra["port"], queue_name, body)

    got: list[Delivery] = []
    subscription = Subscription(topic, "commerce", queue=queue_name)
    async with consuming(bus, subscription, got, fail_first=True):
        await eventually(lambda: len(got) >= 2)  # first batch fails, so it comes again
        # The queue was adopted as it is and bound: our own events reach it too.
        await bus.publish([Envelope(topic=topic, body=b"ours", id="ours-1", key="k")])
        await eventually(lambda: any(d.id == "ours-1" for d in got))

    expected = "rabbit:" + hashlib.sha256(body).hexdigest()
    foreign = [d for d in got if d.body == body]
    assert [d.id for d in foreign] == [expected, expected]
    assert [d.attempt for d in foreign] == [1, 2]  # classic queue: redelivered flag
    assert all(d.key is None and d.topic == topic for d in foreign)
    ours = next(d for d in got if d.id == "ours-1")
    assert ours.key == "k"
    assert ours.body == b"ours"
    # Still the classic queue someone else declared (a quorum re-declare would have failed).
    probe = await raw.channel()
    await probe.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "classic"})


async def test_ensure_topic_declares_an_exchange_named_after_the_topic(
    bus: Bus, raw: AbstractRobustConnection
) -> None:
    topic = f"commerce.order-placed.t{_suffix()}"
    await bus.ensure_topic(topic)
    await bus.ensure_topic(topic)  # idempotent
    channel = await raw.channel()
    exchange = await channel.declare_exchange(topic, passive=True)
    assert exchange.name == topic
    await channel.declare_exchange(unrouted_name(topic), passive=True)

    missing = await raw.channel()
    with pytest.raises(ChannelNotFoundEntity):  # passive really checks
        await missing.declare_exchange(f"{topic}.absent", passive=True)


async def test_a_redelivered_quorum_message_reports_its_attempt(bus: Bus) -> None:
    topic = f"specifics.t{_suffix()}"
    await bus.ensure_topic(topic)
    got: list[Delivery] = []
    async with consuming(bus, Subscription(topic, "g1"), got, fail_first=True):
        await bus.publish([Envelope(topic=topic, body=b"x", id="x-1", headers={"a": "b"})])
        await eventually(lambda: len(got) >= 2)
    assert [d.id for d in got[:2]] == ["x-1", "x-1"]
    assert [d.attempt for d in got[:2]] == [1, 2]
    assert got[1].headers == {"a": "b", "message-id": "x-1"}  # no broker bookkeeping headers


async def test_messages_published_before_any_group_exists_go_to_the_first_group_in_order(
    bus: Bus,
) -> None:
    topic = f"specifics.t{_suffix()}"
    await bus.ensure_topic(topic)
    early = [Envelope(topic=topic, body=str(n).encode(), id=f"e{n}", key="k") for n in range(5)]
    await bus.publish(early)
    got: list[Delivery] = []
    async with consuming(bus, Subscription(topic, "g1"), got):
        await eventually(lambda: len(got) >= 5)
        late = [Envelope(topic=topic, body=str(n).encode(), id=f"l{n}", key="k") for n in range(5)]
        await bus.publish(late)
        await eventually(lambda: len(got) >= 10)
    assert [d.id for d in got] == [e.id for e in early + late]
    assert all(d.key == "k" for d in got)
