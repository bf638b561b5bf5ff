"""No broker, ``PAYCORE_BROKER_URL=none``: for a deployment whose processes exchange nothing
through one (the Rinha deployment: each API records and dispatches its own payments, ADR 0017).
Connecting succeeds; anything that would need a broker is an ``OperatorError`` naming it."""

from __future__ import annotations

from collections.abc import Sequence

from paycore.platform.failures import OperatorError
from paycore.platform.messaging.bus import BatchHandler, Envelope, Subscription


class NoBroker:
    """The ``Bus`` of a process configured without a broker."""

    def __init__(self, url: str) -> None:
        if url != "none":
            raise ValueError(f"unsupported broker URL {url!r}: 'none' takes no options")

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ensure_topic(self, topic: str) -> None:
        raise _needed(f"topic {topic!r}")

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if envelopes:
            raise _needed(f"publishing to {envelopes[0].topic!r}")

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        raise _needed(f"consuming {subscription.topic!r}")

    async def stop_consuming(self) -> None:
        return None

    async def redeliveries_due(self, subscription: Subscription) -> None:
        return None


def _needed(what: str) -> OperatorError:
    return OperatorError(
        f"{what} needs a broker, and this process has none (PAYCORE_BROKER_URL=none): set "
        "PAYCORE_BROKER_URL to nats://, amqp://, kafka:// or redis://"
    )
