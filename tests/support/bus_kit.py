"""A broker adapter connected for a test, and closed after it, whichever the broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Bus


@contextlib.asynccontextmanager
async def connected(
    url: str, *, client_name: str = "tests", retention: dict[str, float] | None = None
) -> AsyncIterator[Bus]:
    bus = create_bus(url, client_name=client_name, retention=retention)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()
