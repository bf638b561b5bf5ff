"""``PAYCORE_BROKER_URL=none``: a process that exchanges nothing through a broker (the Rinha
deployment) starts without one; anything that would need one fails saying so and what to set."""

from __future__ import annotations

import pytest

from paycore.platform.failures import OperatorError
from paycore.platform.messaging.brokers import create_bus, open_bus
from paycore.platform.messaging.bus import Envelope, Subscription
from paycore.platform.settings import Settings


async def test_a_process_without_a_broker_connects_and_publishes_nothing() -> None:
    bus = await open_bus("none")
    await bus.publish([])  # an outbox round with nothing to send
    await bus.redeliveries_due(Subscription("payments", "g"))
    await bus.stop_consuming()
    await bus.close()


async def test_what_needs_a_broker_says_which_setting_is_missing() -> None:
    bus = create_bus("none")

    async def handler(deliveries: object) -> None:
        return None

    attempts = [
        bus.publish([Envelope("orders", b"{}", id="m-1")]),
        bus.subscribe(Subscription("orders", "g"), handler),
        bus.ensure_topic("orders"),
    ]
    for attempt in attempts:
        with pytest.raises(OperatorError, match="PAYCORE_BROKER_URL=none") as caught:
            await attempt
        assert "'orders'" in str(caught.value)
        assert "nats://" in str(caught.value)


def test_none_is_a_broker_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYCORE_BROKER_URL", "none")
    assert Settings(_env_file=None).effective_broker_url == "none"
