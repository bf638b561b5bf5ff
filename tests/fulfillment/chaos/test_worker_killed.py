"""20,000 orders, 10 % of them bad, while the fulfillment worker is SIGKILLed twice: afterwards
every valid order is stored exactly once, every bad one is a dead letter with its reason, and
nothing is missing; a restarted API answers its first lookup from the warmed cache."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from procs import Proc, paycore_env
from servers import Server, free_port
from sqlalchemy import func, select

from paycore.fulfillment import store
from paycore.fulfillment.generator import generate
from paycore.fulfillment.messages import decode
from paycore.platform.ids import uuid7
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Envelope
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine
from paycore.schema import upgrade

COUNT = 20_000
pytestmark = pytest.mark.slow


async def progress(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        stored = await store.count_orders(conn)
        letters = (await conn.execute(select(func.count()).select_from(dead_letters))).scalar_one()
    await engine.dispose()
    return stored, int(letters)


async def test_killing_the_fulfillment_worker_loses_and_doubles_nothing(
    tmp_path: Path, postgres_url: str, nats_server: Server
) -> None:
    await asyncio.to_thread(upgrade, postgres_url)
    messages = list(generate(COUNT, bad_rate=0.1, seed=11))
    valid = [decode(body) for body, kind in messages if kind is None]
    bad = Counter(kind for _, kind in messages if kind is not None)
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        database_url=postgres_url,
        broker_url=f"{nats_server.url}?ack_wait=3",
        data_dir=tmp_path / "data",
        api_port=api_port,
        worker_port=worker_port,
        fulfillment_cache_size=1000,
    )
    worker = Proc(
        ["worker", "--context", "fulfillment"],
        env,
        tmp_path / "worker.log",
        f"http://127.0.0.1:{worker_port}/readyz",
    ).start()
    bus = create_bus(nats_server.url)
    await bus.connect()
    await bus.ensure_topic("orders")
    try:
        envelopes = [Envelope("orders", body, id=uuid7()) for body, _ in messages]
        for start in range(0, COUNT, 500):
            await bus.publish(envelopes[start : start + 500])
        for share in (0.3, 0.65):
            while sum(await progress(postgres_url)) < COUNT * share:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(worker.kill)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(worker.start)
        deadline = time.monotonic() + 180
        while await progress(postgres_url) != (len(valid), sum(bad.values())):
            assert time.monotonic() < deadline, (await progress(postgres_url), worker.log_tail())
            await asyncio.sleep(0.2)
        await asyncio.sleep(4)  # redeliveries of the killed batches must change nothing
        assert await progress(postgres_url) == (len(valid), sum(bad.values()))
    finally:
        await bus.close()
        worker.stop()

    engine = create_engine(postgres_url)
    async with engine.connect() as conn:
        stored = await store.load_orders(conn, [o.order_uid for o in valid])
        reasons = Counter(
            e.split(":", 1)[0] for e in (await conn.execute(select(dead_letters.c.error))).scalars()
        )
        newest = await store.recent_uids(conn, 1)
    await engine.dispose()
    assert stored == {o.order_uid: o for o in valid}
    assert reasons == bad

    api = Proc(
        ["api", "--context", "fulfillment", "--root"],
        env,
        tmp_path / "api.log",
        f"http://127.0.0.1:{api_port}/readyz",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:
            first = await http.get(f"/orders/{newest[0]}")
        assert first.status_code == 200
        assert first.headers["x-cache"] == "hit"
    finally:
        api.stop()
