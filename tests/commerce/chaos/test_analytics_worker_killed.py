"""1,000 orders while the analytics worker is killed with SIGKILL twice: afterwards every order
is counted exactly once (database and Redis rankings) and archived exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from procs import SECRETS, Proc, paycore_env
from redis.asyncio import Redis
from servers import Server, free_port
from sqlalchemy import func, select

from paycore.commerce.analytics import store as analytics_store
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import RedisBoard
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine
from paycore.schema import upgrade

ORDERS = 1_000
CUSTOMERS = 10
PRODUCTS = {"pen": 1.10, "book": 25.00, "bag": 99.99}

pytestmark = pytest.mark.slow


async def count_recorded(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        value = (
            await conn.execute(select(func.count()).select_from(analytics_store.analytics_orders))
        ).scalar_one()
    await engine.dispose()
    return int(value)


async def test_killing_the_analytics_worker_loses_and_doubles_nothing(
    tmp_path: Path, postgres_url: str, nats_server: Server, redis_server: Server
) -> None:
    await asyncio.to_thread(upgrade, postgres_url)
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        database_url=postgres_url,
        broker_url=f"{nats_server.url}?ack_wait=3",
        redis_url=redis_server.url,
        data_dir=tmp_path / "data",
        api_port=api_port,
        worker_port=worker_port,
        **SECRETS,  # every context runs: PostgreSQL needs each secret set
        archive_flush_seconds="0.5",
    )
    api = Proc(["api"], env, tmp_path / "api.log", f"http://127.0.0.1:{api_port}/readyz").start()
    worker = Proc(
        ["worker"], env, tmp_path / "worker.log", f"http://127.0.0.1:{worker_port}/readyz"
    ).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
            for n in range(CUSTOMERS):
                r = await http.post(
                    "/commerce/customers", json={"email": f"c{n}@example.com", "username": f"c{n}"}
                )
                assert r.status_code == 201, r.text
            for name, value in PRODUCTS.items():
                r = await http.post("/commerce/products", json={"name": name, "value": value})
                assert r.status_code == 201, r.text

            accepted: list[dict[str, object]] = []
            gate = asyncio.Semaphore(16)

            async def place(n: int) -> None:
                body = {
                    "email": f"c{n % CUSTOMERS}@example.com",
                    "products": [
                        {"name": name, "quantity": 1 + (n + i) % 4}
                        for i, name in enumerate(PRODUCTS)
                    ],
                }
                async with gate:
                    r = await http.post("/commerce/orders", json=body)
                assert r.status_code == 201, r.text
                accepted.append(r.json())

            async def killer() -> None:
                for threshold in (ORDERS * 3 // 10, ORDERS * 65 // 100):
                    while len(accepted) < threshold:
                        await asyncio.sleep(0.01)
                    await asyncio.to_thread(worker.kill)
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(worker.start)

            await asyncio.gather(killer(), *(place(n) for n in range(ORDERS)))

        deadline = time.monotonic() + 120
        while await count_recorded(postgres_url) < ORDERS:
            assert time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.2)
        await asyncio.sleep(4)  # let any redelivery of the killed batches arrive
        assert worker.stop() == -signal.SIGTERM, worker.log_tail()  # graceful: final flush
    finally:
        worker.kill()
        api.stop()

    engine = create_engine(postgres_url)
    async with engine.connect() as conn:
        recorded = (
            (await conn.execute(select(analytics_store.analytics_orders.c.order_id)))
            .scalars()
            .all()
        )
        letters = (await conn.execute(select(func.count()).select_from(dead_letters))).scalar_one()
    await engine.dispose()
    placed_ids = sorted(int(o["id"]) for o in accepted)  # type: ignore[call-overload]
    assert sorted(recorded) == placed_ids
    assert len(placed_ids) == ORDERS
    assert letters == 0

    redis = Redis.from_url(redis_server.url)
    snapshot = await RedisBoard(redis, ttl_seconds=60).snapshot(100)
    await redis.aclose()
    per_customer = Counter(int(o["customerId"]) for o in accepted)  # type: ignore[call-overload]
    assert {int(e.member): e.score for e in snapshot["customersByOrders"]} == dict(per_customer)
    quantities: Counter[str] = Counter()
    for o in accepted:
        for item in o["items"]:  # type: ignore[attr-defined]
            quantities[item["name"]] += item["quantity"]
    assert {e.member: e.score for e in snapshot["productsByQuantity"]} == dict(quantities)

    archive = Archive(tmp_path / "data" / "archive")
    archived = [r["orderId"] for m in archive.months() for r in archive.records(m, "orders")]
    assert sorted(archived) == placed_ids
    messages = [r["messageId"] for m in archive.months() for r in archive.records(m, "messages")]
    assert len(messages) == len(set(messages)) == ORDERS
