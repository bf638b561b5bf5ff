"""2,000 transactions through `paycore api --context gateway` while the transaction processor
(a worker of its own) is SIGKILLed twice mid-run: afterwards every transaction is decided
exactly once (one decision row each, exactly 2,000 results on the broker), every merchant view
holds the right decision, and the webhook receiver got each result exactly once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import pytest
from gateway_kit import (
    WebhookReceiver,
    create_account,
    expected_decision,
    gateway_settings,
    transaction,
)
from procs import Proc, paycore_env
from servers import free_port, start_nats
from sqlalchemy import func, select

from paycore.gateway import store
from paycore.platform.messaging.brokers.nats import stream_name
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine
from paycore.schema import upgrade

COUNT = 2_000
ACCOUNTS = 4
pytestmark = pytest.mark.slow


async def decided_count(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(store.decisions))
    await engine.dispose()
    return int(count or 0)


async def submit(base: str, secrets: list[str]) -> dict[str, int]:
    """POST the transactions (32 at a time); returns transaction id -> n."""
    ids: dict[str, int] = {}
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def one(n: int) -> None:
            async with gate:
                answer = await http.post(
                    "/gateway/transactions",
                    json=transaction(n),
                    headers={"Authorization": f"Bearer {secrets[n % len(secrets)]}"},
                )
            assert answer.status_code == 202, answer.text
            ids[answer.json()["id"]] = n

        await asyncio.gather(*(one(n) for n in range(COUNT)))
    return ids


async def stream_sizes(url: str) -> dict[str, int]:
    client = await nats.connect(url)
    js = client.jetstream()
    sizes = {
        topic: (await js.stream_info(stream_name(topic))).state.messages
        for topic in ("transactions", "transactions_result")
    }
    await client.close()
    return sizes


async def test_killing_the_processor_decides_every_transaction_exactly_once(
    tmp_path: Path, postgres_url: str
) -> None:
    await asyncio.to_thread(upgrade, postgres_url)
    broker = start_nats(tmp_path / "broker")
    api_port, results_port, processor_port = free_port(), free_port(), free_port()
    env = paycore_env(
        database_url=postgres_url,
        broker_url=f"{broker.url}?ack_wait=3",
        data_dir=tmp_path / "data",
        api_port=api_port,
        log_level="WARNING",
        **gateway_settings(),
    )
    api = Proc(
        ["api", "--context", "gateway"],
        env,
        tmp_path / "api.log",
        f"http://127.0.0.1:{api_port}/readyz",
    )
    results = Proc(
        ["worker", "--context", "gateway", "--port", str(results_port)],
        {**env, "PAYCORE_GATEWAY_WORKER_ROLES": "results"},
        tmp_path / "results.log",
        f"http://127.0.0.1:{results_port}/readyz",
    )
    processor = Proc(
        ["worker", "--context", "gateway", "--port", str(processor_port)],
        {**env, "PAYCORE_GATEWAY_WORKER_ROLES": "processor"},
        tmp_path / "processor.log",
        f"http://127.0.0.1:{processor_port}/readyz",
    )
    base = f"http://127.0.0.1:{api_port}"
    kills = 0
    with WebhookReceiver() as receiver:
        for proc in (api, results, processor):
            await asyncio.to_thread(proc.start)
        try:
            secrets = [
                (await asyncio.to_thread(create_account, base, f"shop-{n}", receiver.url))["secret"]
                for n in range(ACCOUNTS)
            ]
            submitting = asyncio.create_task(submit(base, secrets))
            for share in (0.3, 0.65):
                while await decided_count(postgres_url) < COUNT * share:
                    assert not submitting.done() or submitting.exception() is None
                    await asyncio.sleep(0.02)
                await asyncio.to_thread(processor.kill)
                kills += 1
                await asyncio.sleep(0.5)
                await asyncio.to_thread(processor.start)
            ids = await submitting
            deadline = time.monotonic() + 180
            while (
                await decided_count(postgres_url) < COUNT
                or sum(receiver.transaction_ids().values()) < COUNT
            ):
                assert time.monotonic() < deadline, (
                    await decided_count(postgres_url),
                    processor.log_tail(),
                )
                await asyncio.sleep(0.2)
            await asyncio.sleep(5)  # redeliveries after ack_wait must change nothing
            sizes = await stream_sizes(broker.url)
        finally:
            for proc in (api, processor, results):
                await asyncio.to_thread(proc.stop)
            broker.stop()
        delivered = receiver.transaction_ids()

    assert kills == 2
    assert len(ids) == COUNT
    assert sizes == {"transactions": COUNT, "transactions_result": COUNT}
    assert delivered == {i: 1 for i in ids}  # every result exactly once at the merchant

    engine = create_engine(postgres_url)
    async with engine.connect() as conn:
        views = {
            r.id: (r.status, r.error_message)
            for r in await conn.execute(select(store.transactions))
        }
        decisions = await conn.scalar(select(func.count()).select_from(store.decisions))
        letters = await conn.scalar(select(func.count()).select_from(dead_letters))
    await engine.dispose()
    today = datetime.now(UTC).date()
    expected = {}
    for tx_id, n in ids.items():
        expected[tx_id] = expected_decision(n, today)
    assert decisions == COUNT
    assert letters == 0
    assert views == expected
