"""Scale-out on a broker cluster: three broker nodes — NATS JetStream (every stream on three
replicas), then RabbitMQ (quorum queues on the three nodes) — PostgreSQL, and two APIs and two
workers for each of commerce, gateway and banking's ledger, driven at a steady rate for a
minute. A third of the way in, one broker node and one worker of each context are SIGKILLed;
five seconds later they are started again.

Every process of the NATS run is given every node (it moves to another when its node goes); on
RabbitMQ, whose client takes one address, the processes are spread over the nodes, and those
on the lost node reconnect when it is back (in production the nodes sit behind one address).

Afterwards: every accepted operation was applied exactly once (orders counted once, each
card transaction decided once with the right decision, each transfer posted or refused once
with balances, debits and credits and the hash chain intact), no durable consumer is left
with messages pending, nothing became a dead letter, and each context's rate of applied
operations came back to within 20 % of its rate before the kill within 30 s of it."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from banking_kit import transfer_outcomes
from gateway_kit import expected_decision
from procs import paycore_run
from scale_kit import (
    Load,
    Samples,
    banking_load,
    commerce_load,
    count_of,
    drive,
    gateway_load,
    nats_consumers_busy,
    platform,
    rabbitmq_queues_busy,
    sample,
)
from servers import Server, cluster_url, start_nats_cluster, start_rabbitmq_cluster
from sqlalchemy import select

from paycore.banking.ledger import store as ledger_store
from paycore.commerce.analytics import store as analytics_store
from paycore.gateway import store as gateway_store
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine
from paycore.schema import upgrade

RATE = 20  # operations a second, per context (60 in all keep a slow 2-core host busy)
SECONDS = 60
KILL_AT = 20  # seconds into the run
BACK_AFTER = 5  # seconds the killed processes stay down
RECOVERY = 30  # seconds from the kill within which each rate must be back
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("broker", ["nats", "rabbitmq"])
async def test_a_node_and_a_worker_of_each_context_killed_lose_and_double_nothing(
    tmp_path: Path, postgres_url: str, redis_server: Server, broker: str
) -> None:
    await asyncio.to_thread(upgrade, postgres_url)
    if broker == "nats":
        cluster = await asyncio.to_thread(start_nats_cluster, tmp_path / "broker")
        urls = [f"{cluster_url(cluster)}?replicas=3&ack_wait=3"]
    else:
        cluster = await asyncio.to_thread(start_rabbitmq_cluster, tmp_path / "broker")
        urls = [node.url for node in cluster]
    try:
        with platform(tmp_path, postgres_url, urls, redis_server.url) as up:
            loads = await asyncio.to_thread(
                lambda: [
                    commerce_load(up.bases("commerce")),
                    gateway_load(up.bases("gateway")),
                    banking_load(up.bases("banking")),
                ]
            )
            samples, stop = Samples(), asyncio.Event()
            sampling = asyncio.create_task(sample(postgres_url, loads, samples, stop))
            started = time.monotonic()
            driving = asyncio.gather(*(drive(load, RATE, SECONDS) for load in loads))

            await asyncio.sleep(KILL_AT)
            killed = [cluster[0], *(up.workers[c][0] for c in up.workers)]
            for victim in killed:
                await asyncio.to_thread(victim.kill)
            killed_at = time.monotonic() - started
            await asyncio.sleep(BACK_AFTER)
            for victim in killed:
                await asyncio.to_thread(victim.start)

            await driving
            await applied_all(postgres_url, loads, timeout=120)
            await asyncio.sleep(5)  # redeliveries after ack_wait must change nothing
            stop.set()
            await sampling
            if broker == "nats":
                busy = await nats_consumers_busy([node.url for node in cluster])
            else:
                busy = await asyncio.to_thread(rabbitmq_queues_busy, cluster[1])
            verified, _ = await asyncio.to_thread(paycore_run, up.env, "banking", "verify")
    finally:
        for node in cluster:
            node.stop()

    for load in loads:  # shown with `pytest -s`: what the kill cost each context
        print(broker, load.name, "stalled", stalled(samples, load.name, killed_at), "s")
    assert busy == {}
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for load in loads:
        assert len(load.asked) == RATE * SECONDS, load.name
        before = samples.rate(load.name, 5, killed_at)
        assert before > RATE * 0.8, (load.name, before)  # the rate kept up before the kill
        assert recovered_within(samples, load.name, before, killed_at), (
            load.name,
            before,
            samples.points[load.name],
        )
    commerce, gateway, banking = loads
    await each_order_counted_once(postgres_url, commerce)
    await each_transaction_decided_once(postgres_url, gateway)
    await each_transfer_applied_once(postgres_url, banking)
    assert await count(postgres_url, dead_letters) == 0


def stalled(samples: Samples, context: str, killed_at: float) -> float:
    """The longest time after the kill during which nothing was applied (seconds)."""
    points = [p for p in samples.points[context] if p[0] >= killed_at - 1]
    longest, since = 0.0, points[0]
    for t, applied in points[1:]:
        if applied != since[1]:
            longest, since = max(longest, t - since[0]), (t, applied)
    return round(longest, 1)


def recovered_within(samples: Samples, context: str, before: float, killed_at: float) -> bool:
    """Whether some 5 s window ending within ``RECOVERY`` s of the kill applied at least 80 %
    of the rate before it."""
    ends = [t for t, _ in samples.points[context] if killed_at + 5 <= t <= killed_at + RECOVERY]
    return any(samples.rate(context, end - 5, end) >= 0.8 * before for end in ends)


async def applied_all(url: str, loads: list[Load], timeout: float) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        for load in loads:
            while True:
                async with engine.connect() as conn:
                    if await load.applied(conn) >= len(load.asked):
                        break
                assert time.monotonic() < deadline, load.name
                await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def count(url: str, table: object) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(count_of(table)) or 0)
    finally:
        await engine.dispose()


async def each_order_counted_once(url: str, load: Load) -> None:
    engine = create_engine(url)
    async with engine.connect() as conn:
        column = analytics_store.analytics_orders.c.order_id
        recorded = (await conn.execute(select(column))).scalars().all()
    await engine.dispose()
    assert sorted(str(order_id) for order_id in recorded) == sorted(load.asked)


async def each_transaction_decided_once(url: str, load: Load) -> None:
    engine = create_engine(url)
    async with engine.connect() as conn:
        views = {
            r.id: (r.status, r.error_message)
            for r in await conn.execute(select(gateway_store.transactions))
        }
        decisions = await conn.scalar(count_of(gateway_store.decisions))
    await engine.dispose()
    today = datetime.now(UTC).date()
    assert decisions == len(load.asked)
    assert views == {i: expected_decision(n, today) for i, n in load.asked.items()}


async def each_transfer_applied_once(url: str, load: Load) -> None:
    posted, refused = await transfer_outcomes(url)
    engine = create_engine(url)
    async with engine.connect() as conn:
        balances = {
            row.account_id: row.credits_posted - row.debits_posted
            for row in await conn.execute(select(ledger_store.balances))
        }
    await engine.dispose()
    accounts, planned = load.extra["accounts"], load.extra["planned"]
    assert not posted.keys() & refused.keys()
    assert posted.keys() | refused.keys() == set(load.asked)
    expected = dict.fromkeys(accounts, load.extra["deposit"])
    for transfer_id, (payer, payee, cents) in planned.items():
        if payee in accounts:
            assert posted[transfer_id] == (accounts[payer], payee, cents)
            expected[accounts[payer]] -= cents
            expected[payee] += cents
        else:
            assert refused[transfer_id] == "credit-account-not-found"
    assert {a: balances[a] for a in accounts} == expected
    assert Counter(refused.values()) == {"credit-account-not-found": RATE * SECONDS // 40}
