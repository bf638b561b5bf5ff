"""Kafka-only behaviour of the adapter, on the Tansu test broker: the idempotent producer is
asked for by default, and a server that refuses it gets a plain producer with a warning (or,
when told to require it, no start at all)."""

from __future__ import annotations

import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from servers import Server

from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.brokers.kafka import KafkaBus
from paycore.platform.messaging.bus import Envelope


async def test_a_server_refusing_the_idempotent_producer_gets_a_plain_one_with_a_warning(
    kafka_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    bus = create_bus(kafka_server.url)
    assert isinstance(bus, KafkaBus)
    caplog.set_level(logging.WARNING, logger="paycore.platform.messaging.brokers.kafka")
    await bus.connect()
    try:
        assert bus.idempotent is False  # Tansu refuses InitProducerId
        assert "refused the idempotent producer" in caplog.text
        topic = f"idem-{uuid.uuid4().hex[:8]}"
        await bus.publish([Envelope(topic, b"still published", id="m-1")])
    finally:
        await bus.close()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_server.extra["bootstrap"], auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == b"still published"


async def test_when_idempotence_is_required_a_refusing_server_stops_the_start(
    kafka_server: Server,
) -> None:
    bus = create_bus(f"{kafka_server.url}?idempotence=1")
    with pytest.raises(KafkaError):
        await bus.connect()
    await bus.close()


async def test_without_idempotence_nothing_is_asked(
    kafka_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    bus = create_bus(f"{kafka_server.url}?idempotence=0")
    caplog.set_level(logging.WARNING, logger="paycore.platform.messaging.brokers.kafka")
    await bus.connect()
    await bus.close()
    assert "idempotent" not in caplog.text


def test_a_bad_idempotence_option_is_refused() -> None:
    with pytest.raises(ValueError, match="idempotence='maybe': use auto, 1 or 0"):
        create_bus("kafka://127.0.0.1:9092?idempotence=maybe")


async def test_a_topic_with_a_retention_is_created_with_it(
    kafka_server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A new topic gets its retention; one made before it had a retention is altered, which
    Tansu cannot do (no AlterConfigs): that is said loudly, and the topic still works."""
    fresh, older = f"kept-{uuid.uuid4().hex[:8]}", f"kept-{uuid.uuid4().hex[:8]}"
    plain = create_bus(kafka_server.url)
    await plain.connect()
    try:
        await plain.ensure_topic(older)
    finally:
        await plain.close()
    caplog.set_level(logging.ERROR, logger="paycore.platform.messaging.brokers.kafka")
    bus = create_bus(kafka_server.url, retention={fresh: 3600.0, older: 90.0})
    await bus.connect()
    try:
        await bus.ensure_topic(fresh)
        await bus.publish([Envelope(older, b"still published", id="m-1")])
    finally:
        await bus.close()
    assert "topic kept without its retention" in caplog.text
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.extra["bootstrap"])
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, fresh)])
    finally:
        await admin.close()
    configs = {
        entry[0]: entry[1]
        for response in described
        for *_, entries in response.resources
        for entry in entries
    }
    assert configs["retention.ms"] == "3600000"
