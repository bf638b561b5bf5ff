"""The broker adapters, one module each, and the factory that picks one by URL scheme. Each
adapter module is imported only when its scheme is used (their client libraries are heavy)."""

from __future__ import annotations

import contextlib

from paycore.platform.failures import Unreachable
from paycore.platform.messaging.bus import Bus, Retention


def create_bus(
    url: str, *, client_name: str = "paycore", retention: Retention | None = None
) -> Bus:
    """The adapter for the URL scheme: nats://, amqp(s)://, kafka://, redis(s)://, or ``none``
    (a process that needs no broker, ``brokers.none``); ``retention``
    limits how long the broker keeps the messages of the topics it names (see ``bus``)."""
    scheme = url.split("://", 1)[0]
    retention = retention or {}
    if scheme == "nats":
        from paycore.platform.messaging.brokers.nats import NatsBus

        return NatsBus(url, client_name=client_name, retention=retention)
    if scheme in ("amqp", "amqps"):
        from paycore.platform.messaging.brokers.rabbitmq import RabbitBus

        return RabbitBus(url, client_name=client_name, retention=retention)
    if scheme == "kafka":
        from paycore.platform.messaging.brokers.kafka import KafkaBus

        return KafkaBus(url, client_name=client_name, retention=retention)
    if scheme in ("redis", "rediss"):
        from paycore.platform.messaging.brokers.redis_streams import RedisStreamsBus

        return RedisStreamsBus(url, client_name=client_name, retention=retention)
    if scheme == "none":
        from paycore.platform.messaging.brokers.none import NoBroker

        return NoBroker(url)
    raise ValueError(
        f"unsupported broker URL {url!r}: use nats://, amqp://, kafka://, redis:// or none"
    )


async def open_bus(
    url: str, *, client_name: str = "paycore", retention: Retention | None = None
) -> Bus:
    """The connected adapter for the URL (``create_bus``). A broker it cannot reach (each
    adapter gives up after ``CONNECT_TIMEOUT_SECONDS``) is an ``Unreachable`` error, with
    nothing of the attempt left open."""
    bus = create_bus(url, client_name=client_name, retention=retention)
    try:
        await bus.connect()
    except (OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await bus.close()
        raise Unreachable("broker", url, exc) from exc
    return bus
