"""The NATS adapter's batch publishing and acknowledging (``brokers.nats_batch``), on a real
nats-server: each message stored with its headers, refusals raised, acks that take; atomic
batches stored in order, all or nothing, and published again one by one when refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError
from servers import Server

from paycore.platform.messaging.brokers.nats_batch import (
    ATOMIC_FROM,
    BATCH_ID,
    BATCH_SEQUENCE,
    MAX_ATOMIC,
    Message,
    Publisher,
    ack_all,
)


@pytest.fixture
async def client(nats_server: Server) -> AsyncIterator[nats.NATS]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


async def _stream(nc: nats.NATS, **config: object) -> str:
    name = f"t{uuid.uuid4().hex[:12]}"
    await nc.jetstream().add_stream(StreamConfig(name=name, subjects=[name], **config))
    return name


async def _publisher(nc: nats.NATS) -> Publisher:
    publisher = Publisher(nc, timeout=5)
    await publisher.open()
    return publisher


async def test_a_batch_is_stored_in_order_with_its_headers(client: nats.NATS) -> None:
    subject = await _stream(client)
    batch = [(subject, f"m{i}".encode(), {"Nats-Msg-Id": f"id-{i}", "n": str(i)}) for i in range(5)]
    await (await _publisher(client)).publish(batch)

    js = client.jetstream()
    stored = [await js.get_msg(subject, seq) for seq in range(1, 6)]
    assert [m.data for m in stored] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.headers["n"] for m in stored if m.headers] == ["0", "1", "2", "3", "4"]
    assert (await js.stream_info(subject)).state.messages == 5


async def test_a_line_break_in_a_header_cannot_add_a_header(client: nats.NATS) -> None:
    subject = await _stream(client)
    sneaky = {"Nats-Msg-Id": "real", "paycore-correlation-id": "x\r\nNats-Msg-Id: forged"}
    publisher = await _publisher(client)
    await publisher.publish([(subject, b"body", sneaky)])

    stored = await client.jetstream().get_msg(subject, 1)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == "real"
    assert stored.headers["paycore-correlation-id"] == "x  Nats-Msg-Id: forged"


async def test_a_repeated_id_is_stored_once(client: nats.NATS) -> None:
    subject = await _stream(client)
    publisher = await _publisher(client)
    message = (subject, b"once", {"Nats-Msg-Id": "same"})
    await publisher.publish([message, message])
    await publisher.publish([message])
    assert (await client.jetstream().stream_info(subject)).state.messages == 1


async def test_a_subject_no_stream_takes_is_refused(client: nats.NATS) -> None:
    publisher = await _publisher(client)
    with pytest.raises(NoStreamResponseError):
        await publisher.publish([(f"nostream{uuid.uuid4().hex}", b"lost", {"Nats-Msg-Id": "a"})])


async def test_a_stream_that_refuses_a_message_says_so(client: nats.NATS) -> None:
    subject = await _stream(client, max_msgs=1, discard=DiscardPolicy.NEW)
    publisher = await _publisher(client)
    await publisher.publish([(subject, b"first", {"Nats-Msg-Id": "1"})])
    with pytest.raises(APIError, match="maximum messages"):
        await publisher.publish([(subject, b"second", {"Nats-Msg-Id": "2"})])
    assert (await client.jetstream().stream_info(subject)).state.messages == 1


async def test_a_body_over_the_servers_limit_is_refused_before_sending(client: nats.NATS) -> None:
    subject = await _stream(client)
    publisher = await _publisher(client)
    with pytest.raises(ValueError, match="over the server's limit"):
        await publisher.publish([(subject, b"x" * (client.max_payload + 1), {})])
    assert (await client.jetstream().stream_info(subject)).state.messages == 0


async def test_acked_deliveries_are_not_pending(client: nats.NATS) -> None:
    subject = await _stream(client)
    await (await _publisher(client)).publish([(subject, b"m", {}) for _ in range(20)])
    js = client.jetstream()
    pull = await js.pull_subscribe(subject, durable="reader")
    msgs = await pull.fetch(20, timeout=5)
    await ack_all(client, msgs[:15])
    await client.flush()
    info = await js.consumer_info(subject, "reader")
    assert (info.num_ack_pending, info.num_pending) == (5, 0)


# --- atomic batches ------------------------------------------------------------------------


async def _stored(nc: nats.NATS, stream: str) -> list[bytes]:
    js = nc.jetstream()
    count = (await js.stream_info(stream)).state.messages
    return [(await js.get_msg(stream, seq)).data for seq in range(1, count + 1)]


def _messages(subject: str, ids: range) -> list[Message]:
    return [(subject, f"m{i}".encode(), {"Nats-Msg-Id": f"{subject}-{i}"}) for i in ids]


async def test_an_atomic_batch_is_stored_in_order_with_one_acknowledgement(
    client: nats.NATS,
) -> None:
    subject = await _stream(client, allow_atomic=True)
    publisher = await _publisher(client)
    acks: list[Any] = []

    async def count(msg: Any) -> None:
        acks.append(msg)

    await client.subscribe(f"{publisher._inbox}.*", cb=count)
    await publisher.publish(_messages(subject, range(50)), atomic={subject})

    assert await _stored(client, subject) == [f"m{i}".encode() for i in range(50)]
    assert len(acks) == 1
    stored = await client.jetstream().get_msg(subject, 7)
    assert stored.headers is not None
    assert stored.headers["Nats-Batch-Sequence"] == "7"


async def test_more_than_an_atomic_batch_goes_as_several_in_order(client: nats.NATS) -> None:
    subject = await _stream(client, allow_atomic=True)
    publisher = await _publisher(client)
    await publisher.publish(_messages(subject, range(MAX_ATOMIC * 2 + 5)), atomic={subject})
    assert await _stored(client, subject) == [f"m{i}".encode() for i in range(MAX_ATOMIC * 2 + 5)]


async def test_each_subject_keeps_its_order_and_plain_ones_are_published_too(
    client: nats.NATS,
) -> None:
    first, second = await _stream(client, allow_atomic=True), await _stream(client)
    one, two = _messages(first, range(30)), _messages(second, range(30))
    mixed = [m for pair in zip(one, two, strict=True) for m in pair]
    await (await _publisher(client)).publish(mixed, atomic={first})
    assert await _stored(client, first) == [m[1] for m in one]
    assert await _stored(client, second) == [m[1] for m in two]


async def test_a_batch_repeating_a_stored_id_stores_only_what_is_new_in_order(
    client: nats.NATS,
) -> None:
    """A publish repeated after a lost acknowledgement: the server refuses the whole atomic
    batch for the one id it has, so it goes again message by message, the repeat dropped."""
    subject = await _stream(client, allow_atomic=True)
    publisher = await _publisher(client)
    await publisher.publish(_messages(subject, range(3)), atomic={subject})
    await publisher.publish(_messages(subject, range(ATOMIC_FROM * 2)), atomic={subject})
    assert await _stored(client, subject) == [f"m{i}".encode() for i in range(ATOMIC_FROM * 2)]


async def test_a_refusal_inside_an_atomic_batch_is_raised(client: nats.NATS) -> None:
    limit = ATOMIC_FROM + 2
    subject = await _stream(client, allow_atomic=True, max_msgs=limit, discard=DiscardPolicy.NEW)
    publisher = await _publisher(client)
    with pytest.raises(APIError, match="maximum messages"):
        await publisher.publish(_messages(subject, range(ATOMIC_FROM * 2)), atomic={subject})
    assert await _stored(client, subject) == [f"m{i}".encode() for i in range(limit)]


async def test_fewer_than_an_atomic_batch_go_one_by_one(client: nats.NATS) -> None:
    """Below ``ATOMIC_FROM`` messages, one sync each costs the server less than a batch."""
    subject = await _stream(client, allow_atomic=True)
    publisher = await _publisher(client)
    await publisher.publish(_messages(subject, range(ATOMIC_FROM - 1)), atomic={subject})
    js = client.jetstream()
    for seq in range(1, ATOMIC_FROM):
        stored = await js.get_msg(subject, seq)
        assert stored.headers is not None
        assert BATCH_ID not in stored.headers


async def test_batch_headers_from_the_caller_are_not_sent(client: nats.NATS) -> None:
    """A message carrying another batch's headers (a delivery published again) would be taken
    for part of a batch never committed, and acknowledged without being stored."""
    subject = await _stream(client, allow_atomic=True)
    stale = {"Nats-Msg-Id": "again", BATCH_ID: "old", BATCH_SEQUENCE: "3"}
    await (await _publisher(client)).publish([(subject, b"again", stale)])
    stored = await client.jetstream().get_msg(subject, 1)
    assert stored.data == b"again"
    assert stored.headers is not None
    assert BATCH_ID not in stored.headers
