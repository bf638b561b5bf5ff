"""What only the NATS adapter does, on a real nats-server: its streams take atomic batches
(a stream found without them is given them, keeping its own settings), a batch published
through the bus is stored as one, deliveries do not carry the batch's headers, and a topic
whose subject another stream holds is still published to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import nats
import orjson
from bus_kit import connected
from nats.js.api import StreamConfig
from servers import Server

from paycore.platform.ids import uuid7
from paycore.platform.messaging.brokers.nats import stream_name
from paycore.platform.messaging.brokers.nats_batch import ATOMIC_FROM, BATCH_HEADERS, BATCH_ID
from paycore.platform.messaging.bus import Delivery, Envelope, Subscription


def _topic() -> str:
    return f"natsspec.t{uuid7().replace('-', '')[-12:]}"


@contextlib.asynccontextmanager
async def _client(url: str) -> AsyncIterator[nats.NATS]:
    nc = await nats.connect(url)
    try:
        yield nc
    finally:
        await nc.close()


async def test_a_batch_published_through_the_bus_is_stored_as_one_and_delivered_without_its_headers(
    nats_server: Server,
) -> None:
    topic = _topic()
    sent = [Envelope(topic=topic, body=orjson.dumps({"n": n}), id=uuid7()) for n in range(40)]
    got: list[Delivery] = []

    async def handler(batch: Sequence[Delivery]) -> None:
        got.extend(batch)

    async with connected(nats_server.url) as bus:
        await bus.publish(sent)
        task = asyncio.create_task(bus.subscribe(Subscription(topic, "g"), handler))
        try:
            async with asyncio.timeout(10):
                while len(got) < len(sent):
                    await asyncio.sleep(0.02)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert [d.id for d in got] == [e.id for e in sent]
    assert all(BATCH_HEADERS.isdisjoint(d.headers) for d in got)
    async with _client(nats_server.url) as nc:
        js = nc.jetstream()
        assert (await js.stream_info(stream_name(topic))).config.allow_atomic
        first, last = (
            await js.get_msg(stream_name(topic), 1),
            await js.get_msg(stream_name(topic), 40),
        )
        assert first.headers is not None
        assert last.headers is not None
        assert first.headers[BATCH_ID] == last.headers[BATCH_ID]  # one batch


async def test_a_stream_made_without_atomic_batches_is_given_them_and_keeps_its_settings(
    nats_server: Server,
) -> None:
    """As a stream an earlier paycore made, or an operator did with their own limits."""
    topic = _topic()
    async with _client(nats_server.url) as nc:
        js = nc.jetstream()
        own = StreamConfig(name=stream_name(topic), subjects=[topic], max_msgs=1_000)
        await js.add_stream(own)
        assert not (await js.stream_info(stream_name(topic))).config.allow_atomic

        async with connected(nats_server.url) as bus:
            sent = [Envelope(topic=topic, body=b"{}", id=uuid7()) for _ in range(ATOMIC_FROM)]
            await bus.publish(sent)

        config = (await js.stream_info(stream_name(topic))).config
        assert config.allow_atomic
        assert config.max_msgs == 1_000
        assert (await js.get_msg(stream_name(topic), ATOMIC_FROM)).headers[BATCH_ID]  # type: ignore[index]


async def test_a_topic_whose_subject_another_stream_holds_is_published_to_that_stream(
    nats_server: Server,
) -> None:
    """As when an operator's stream takes a whole subtree: paycore's stream cannot be made, and
    the messages go to theirs, one by one."""
    subtree = _topic()
    topic = f"{subtree}.orders"
    async with _client(nats_server.url) as nc:
        js = nc.jetstream()
        theirs = f"theirs{uuid7().replace('-', '')[-8:]}"
        await js.add_stream(StreamConfig(name=theirs, subjects=[f"{subtree}.>"]))

        async with connected(nats_server.url) as bus:
            sent = [Envelope(topic=topic, body=b"{}", id=uuid7()) for _ in range(ATOMIC_FROM)]
            await bus.publish(sent)

        assert (await js.stream_info(theirs)).state.messages == ATOMIC_FROM
        assert BATCH_ID not in ((await js.get_msg(theirs, 1)).headers or {})
