"""Smoke tests: each server fixture gives a server that really accepts work."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg
import nats
import redis.asyncio as redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from servers import Server


async def test_postgres_database_per_test(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == postgres_url.rsplit("/", 1)[1]
        assert await conn.fetchval("SHOW fsync") == "on"
    finally:
        await conn.close()


async def test_redis_ping(redis_server: Server) -> None:
    client = redis.from_url(redis_server.url)
    try:
        assert await client.ping()
        assert await client.config_get("appendonly") == {"appendonly": "yes"}
    finally:
        await client.aclose()


async def test_rabbitmq_quorum_queue_round_trip(rabbitmq_server: Server) -> None:
    connection = await aio_pika.connect(rabbitmq_server.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            "smoke", durable=True, arguments={"x-queue-type": "quorum"}
        )
        message = aio_pika.Message(b"hi", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key="smoke")
        received = await queue.get(timeout=10)
        await received.ack()
    assert received.body == b"hi"


async def test_nats_jetstream_publish(nats_server: Server) -> None:
    client = await nats.connect(nats_server.url)
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(name="SMOKE", subjects=["smoke.>"])
        ack = await jetstream.publish("smoke.one", b"hi")
    finally:
        await client.close()
    assert ack.stream == "SMOKE"
    assert ack.seq == 1


async def test_kafka_produce_consume(kafka_server: Server) -> None:
    bootstrap = kafka_server.extra["bootstrap"]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("smoke", b"hi")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        "smoke", bootstrap_servers=bootstrap, group_id="smoke", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert record.value == b"hi"


async def test_nats_message_survives_kill_and_restart(nats_server: Server) -> None:
    client = await nats.connect(nats_server.url)
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(name="DURABLE", subjects=["durable.>"])
        ack = await jetstream.publish("durable.one", b"kept")
    finally:
        await client.close()

    await asyncio.to_thread(nats_server.kill)
    await asyncio.to_thread(nats_server.restart)

    client = await nats.connect(nats_server.url)
    try:
        stored = await client.jetstream().get_msg("DURABLE", ack.seq)
    finally:
        await client.close()
    assert stored.data == b"kept"
