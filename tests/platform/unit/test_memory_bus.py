"""The in-memory broker of the unit tests keeps the brokers' contract: every group gets every
message once, in order; a failed batch comes again with its attempt counted; a message id
published twice is delivered once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from memory_bus import MemoryBus

from paycore.platform.messaging.bus import Delivery, Envelope, Subscription


async def _until(check: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_each_group_gets_every_message_once_in_order_and_failures_come_again() -> None:
    bus = MemoryBus()
    seen: dict[str, list[tuple[str, int]]] = {"a": [], "b": []}
    failed = False

    def handler(group: str):  # type: ignore[no-untyped-def]
        async def handle(batch: Sequence[Delivery]) -> None:
            nonlocal failed
            if group == "b" and not failed:
                failed = True
                raise RuntimeError("not acknowledged")
            seen[group] += [(d.id, d.attempt) for d in batch]

        return handle

    tasks = [
        asyncio.create_task(bus.subscribe(Subscription("t", group, batch=2), handler(group)))
        for group in ("a", "b")
    ]
    await bus.publish([Envelope("t", b"1", id="m1"), Envelope("t", b"2", id="m2")])
    await bus.publish([Envelope("t", b"1 again", id="m1"), Envelope("t", b"3", id="m3")])
    await _until(lambda: len(seen["a"]) == 3 and len(seen["b"]) == 3)
    await bus.stop_consuming()
    await asyncio.gather(*tasks)
    assert [i for i, _ in seen["a"]] == ["m1", "m2", "m3"]
    assert seen["b"][:2] == [("m1", 2), ("m2", 2)]  # the failed batch, again
    assert len(bus.published) == 4  # what was published, repeats included
