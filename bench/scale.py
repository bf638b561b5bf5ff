"""Benchmark: how the workers of commerce, gateway and the banking ledger scale with 1, 2 and 4
processes per context on one machine, beside the broker's and the database's own floor measured
in the same run, and where the limit lies.

    .venv/bin/python bench/scale.py [--messages 20000] [--workers 1 2 4]
        [--contexts commerce gateway banking] [--quick] [--keep DIR]

Starts its own PostgreSQL, NATS (fsync on every write) and, for commerce, Redis on 127.0.0.1.
Per context it seeds a template database once with the context's own code, builds
``--messages`` messages as its API would publish them (``outbox.event``), and measures:

- each worker count N of ``--workers``: a fresh copy of the template; the broker emptied (every
  stream deleted) and the messages published to it; N `paycore worker --context X` processes
  started together, each with its own port and data folder, and held at a gate until all
  answer ``/readyz`` (the bench holds ``LOCK TABLE inbox IN EXCLUSIVE MODE``: each worker's
  first batch waits at its inbox claim); then the gate opens and the database is polled every
  50 ms until every message is applied (or dead-lettered): messages/s from the first poll that
  saw one applied to the last (``harness.watch``). Afterwards: dead letters, whether every
  worker was still alive, the lines their logs hold (warnings and worse), and the context's
  own check.
  - commerce: the analytics service consuming ``commerce.order-created`` (an order of 1 to 3
    products); applied = an order recorded. Rankings in Redis (emptied before each run), as a
    deployment of more than one analytics worker needs; check: the ranking of orders per
    customer counts each order once.
  - gateway: the processor and the result applier consuming ``transactions`` (its pending
    transactions, written with the gateway's own code into the template, cards of varied
    brands, some refused); applied = a transaction no longer pending, so each message crosses
    the broker twice (its decision goes out as ``transactions_result`` through the outbox).
    Check: none left pending.
  - banking: the ledger worker consuming ``banking.transfers`` (``bench/banking.py``'s seed and
    uniform workload over ``BANKING_ACCOUNTS`` accounts); applied = a journal entry or a
    refusal. Check: ``verify`` (the hash chain and every balance). The ledger has one writer
    (the ledger's lock, docs/adr/0014): more ledger workers are not meant to add throughput.
- broker floor: the same messages (same topic, same size) consumed by the simplest nats-py
  loop from this process: a durable pull subscription, ``fetch`` of the worker's batch size,
  ``ack`` each; the first batch not counted.
- database floor: the rows the context's worker writes per message, by the simplest batched
  writes on one asyncpg connection, one transaction per worker's batch (COPY, and one UPDATE
  over ``unnest`` where the worker updates), no rules, no inbox, no outbox; the first batch not
  counted. Commerce: the order, its lines and the consumed message. Gateway: the decision and
  the transaction's new status. Banking: ``bench/banking.py``'s floor (the journal's entries
  and the balances they move).

The batch sizes are the defaults a deployment runs (``PAYCORE_CONSUMER_BATCH``, the ledger's
``PAYCORE_BANKING_LEDGER_BATCH``).

Reading the table: ``msg/s`` and ``vs 1w`` (the rate over that of one worker) give the curve;
``of broker`` and ``of db`` how far a run is from each floor. The cores (CPU seconds per wall
second while measured, ``harness.cpu_use``): ``workers`` is the sum of the N worker processes;
``bench`` this process (the floors' client, or the poll: a broker floor whose ``bench`` is near
1 is bounded by its one Python client, not by NATS); ``other`` whatever else ran on the
machine. While the workers run, each poll also samples where the database's sessions in a
transaction are (``pg_stat_activity``), printed under the table as the mean number of sessions
``running`` a statement, waiting (``Lock:advisory`` for a lock taken with
``pg_advisory_xact_lock``, ``IO:WALSync`` for a commit's fsync…) or ``in worker`` (idle in
their transaction: PostgreSQL waits for the worker's next statement, so the worker's Python,
its event loop or its round trips to other servers are the slow part).

``limit`` says where the limit lies, the first that holds: ``machine`` (every core busy: more
processes only share them; ``other`` says whether this run or someone else filled them),
``worker CPU`` (the workers average 0.9 of a core or more each), ``postgres CPU`` (PostgreSQL's
processes use 0.9 of a core or more), else what most sessions in a transaction did: with
several workers, ``Lock:advisory`` means one lock serializes their batches (the ledger's lock,
docs/adr/0014, or the analytics service's turn on its archived tables), so more workers
cannot add throughput; ``in worker`` or ``running`` mean the work is spread across processes
that are neither CPU-bound nor queued on a lock (round trips and waits). On 2 cores the curve
flattens early; what matters is that every message is applied once, nothing is dead-lettered
and no worker dies (the lines under each table).

Writes ``bench/results/scale.json`` (``--quick``: ``scale_quick.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import nats
from nats.js.api import ConsumerConfig
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from gateway_kit import CARD_KEYS, PEPPER, card_and_cents  # noqa: E402
from procs import Proc, paycore_process  # noqa: E402
from servers import (  # noqa: E402
    Server,
    create_database,
    drop_database,
    free_port,
    run_sql,
    start_nats,
    start_postgres,
    start_redis,
)

import banking as banking_bench  # noqa: E402
from paycore.banking import messages as banking_messages  # noqa: E402
from paycore.banking.ledger.verify import verify  # noqa: E402
from paycore.banking.settings import BankingSettings  # noqa: E402
from paycore.commerce import messages as commerce_messages  # noqa: E402
from paycore.commerce.analytics import store as analytics_store  # noqa: E402
from paycore.commerce.analytics.board import RANKINGS  # noqa: E402
from paycore.commerce.domain import Order, OrderLine  # noqa: E402
from paycore.gateway import messages as gateway_messages  # noqa: E402
from paycore.gateway import service as gateway_service  # noqa: E402
from paycore.gateway import store as gateway_store  # noqa: E402
from paycore.gateway.domain import PENDING  # noqa: E402
from paycore.platform.cards import Hasher, Keyring  # noqa: E402
from paycore.platform.clock import utcnow  # noqa: E402
from paycore.platform.messaging.bus import Envelope  # noqa: E402
from paycore.platform.messaging.deadletters import dead_letters  # noqa: E402
from paycore.platform.persistence import outbox  # noqa: E402
from paycore.platform.persistence.db import create_engine  # noqa: E402
from paycore.platform.persistence.uow import Database  # noqa: E402
from paycore.platform.settings import Settings  # noqa: E402
from paycore.schema import upgrade  # noqa: E402

FULL = {"messages": 20_000}
QUICK = {"messages": 6_000}
"""Messages per context, unless given (``--quick``: a smoke run)."""
CONTEXTS = ("commerce", "gateway", "banking")
CONSUMER_BATCH: int = Settings.model_fields["consumer_batch"].default
LEDGER_BATCH: int = BankingSettings.model_fields["ledger_batch"].default
BANKING_ACCOUNTS = {"full": 1000, "quick": 200}
GATEWAY_ACCOUNTS = 4
CUSTOMERS, PRODUCTS = 100, 20
BUSY = 0.9
"""Cores from which a process kind counts as busy (``limit``)."""

T = TypeVar("T")
Count = Callable[[AsyncConnection], Awaitable[int]]


@dataclass
class Context:
    """One context under test: its seeded template database, its messages, how its work is
    counted and checked, and its database floor."""

    name: str
    template: str
    envelopes: list[Envelope]
    batch: int  # messages per batch its worker takes, and the floors' batch
    applied: Count  # messages applied so far (dead letters included)
    db_floor: Callable[[str], Coroutine[Any, Any, dict[str, Any]]]  # on a fresh copy's URL
    check: Callable[[str], Coroutine[Any, Any, dict[str, Any]]]  # after a run, on its database
    settings: dict[str, Any] = field(default_factory=dict)  # the workers' PAYCORE_* settings


# --- shared ----------------------------------------------------------------------------------


def dsn(url: str) -> str:
    """asyncpg's URL of a SQLAlchemy one."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def count_rows(conn: AsyncConnection, query: Any) -> int:
    return int(await conn.scalar(query) or 0)


async def dead_lettered(conn: AsyncConnection) -> int:
    return await count_rows(conn, select(func.count()).select_from(dead_letters))


async def on_database(url: str, read: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await read(conn)
    finally:
        await engine.dispose()


def fresh_copy(pg: Server, template: str) -> str:
    return create_database(pg, f"bench_{time.time_ns()}", template=template)


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


async def write_batches(
    url: str,
    parts: Sequence[Sequence[T]],
    write: Callable[[asyncpg.Connection, Sequence[T]], Awaitable[None]],
) -> dict[str, Any]:
    """A database floor: ``write`` each part in a transaction of its own on one asyncpg
    connection, the first not counted."""
    conn = await asyncpg.connect(dsn(url))
    try:
        async with conn.transaction():
            await write(conn, parts[0])
        with harness.cpu_use() as cores:  # its connection open: its backend counts
            started = time.monotonic()
            for part in parts[1:]:
                async with conn.transaction():
                    await write(conn, part)
            seconds = time.monotonic() - started
    finally:
        await conn.close()
    counted = sum(len(part) for part in parts[1:])
    return {"counted": counted, "seconds": round(seconds, 2), "cpu_cores": cores}


# --- commerce --------------------------------------------------------------------------------


def prepare_commerce(pg: Server, redis: Server, count: int) -> Context:
    """An empty migrated template; ``count`` orders of 1 to 3 products."""
    template = "commerce_seed"
    upgrade(create_database(pg, template))
    rng = random.Random(1)
    now = utcnow()
    orders = []
    for n in range(count):
        products = rng.sample(range(PRODUCTS), rng.randint(1, 3))
        lines = tuple(
            OrderLine(f"product-{p}", rng.randint(1, 5), 100 + 37 * p) for p in sorted(products)
        )
        orders.append(Order(n + 1, 1 + n % CUSTOMERS, lines, now))
    envelopes = [
        outbox.event(
            commerce_messages.ORDER_CREATED,
            commerce_messages.encode_order_created(order),
            at=now,
            key=str(order.customer_id),
        )
        for order in orders
    ]
    pairs = list(zip(orders, envelopes, strict=True))
    recorded = select(func.count()).select_from(analytics_store.analytics_orders)

    async def applied(conn: AsyncConnection) -> int:
        return await count_rows(conn, recorded) + await dead_lettered(conn)

    async def check(url: str) -> dict[str, Any]:
        """The board's orders per customer, summed: each order counted once."""
        client = Redis.from_url(redis.url)
        try:
            key = "paycore:commerce:" + RANKINGS["customersByOrders"]  # RedisBoard's default
            ranked = await client.zrange(key, 0, -1, withscores=True)
        finally:
            await client.aclose()
        counted = int(sum(float(pair[1]) for pair in ranked))
        return {"ranked_orders": counted, "ok": counted == count}

    return Context(
        name="commerce",
        template=template,
        envelopes=envelopes,
        batch=CONSUMER_BATCH,
        applied=applied,
        db_floor=lambda url: write_batches(url, batches(pairs, CONSUMER_BATCH), commerce_rows),
        check=check,
        settings={"redis_url": redis.url},
    )


async def commerce_rows(conn: asyncpg.Connection, part: Sequence[tuple[Order, Envelope]]) -> None:
    """What the analytics service records of a batch: the orders, their lines, the messages."""
    now = utcnow()
    await conn.copy_records_to_table(
        "commerce_analytics_orders",
        columns=(
            *("order_id", "customer_id", "total_cents", "item_count", "ordered_at"),
            *("source", "message_id", "recorded_at"),
        ),
        records=[order_row(o, e.id, now) for o, e in part],
    )
    await conn.copy_records_to_table(
        "commerce_analytics_lines",
        columns=("order_id", "product", "unit_cents", "quantity"),
        records=[
            (o.order_id, line.product, line.unit_cents, line.quantity)
            for o, _ in part
            for line in o.lines
        ],
    )
    await conn.copy_records_to_table(
        "commerce_consumed_messages",
        columns=("message_id", "topic", "body", "received_at"),
        records=[(e.id, e.topic, e.body, now) for _, e in part],
    )


def order_row(order: Order, message_id: str, now: datetime) -> tuple[Any, ...]:
    """An order's row in ``commerce_analytics_orders``."""
    return (
        *(order.order_id, order.customer_id, order.total_cents, order.item_count),
        *(order.ordered_at, "commerce", message_id, now),
    )


# --- gateway ---------------------------------------------------------------------------------


def prepare_gateway(pg: Server, count: int) -> Context:
    """A template with merchant accounts and ``count`` pending transactions, written with the
    gateway's own code as its API writes them; their ``transactions`` events."""
    template = "gateway_seed"
    url = create_database(pg, template)
    upgrade(url)
    prepared = asyncio.run(seed_gateway(url, count))
    envelopes = [
        outbox.event(
            gateway_messages.TRANSACTIONS, p.message, at=p.record.created_at, key=p.record.id
        )
        for p in prepared
    ]
    t = gateway_store.transactions.c
    decided = (
        select(func.count()).select_from(gateway_store.transactions).where(t.status != PENDING)
    )
    pending = (
        select(func.count()).select_from(gateway_store.transactions).where(t.status == PENDING)
    )

    async def applied(conn: AsyncConnection) -> int:
        return await count_rows(conn, decided) + await dead_lettered(conn)

    async def check(url: str) -> dict[str, Any]:
        left = await on_database(url, lambda conn: count_rows(conn, pending))
        return {"still_pending": left, "ok": left == 0}

    ids = [(p.record.id, p.record.account_id) for p in prepared]
    return Context(
        name="gateway",
        template=template,
        envelopes=envelopes,
        batch=CONSUMER_BATCH,
        applied=applied,
        db_floor=lambda url: write_batches(url, batches(ids, CONSUMER_BATCH), gateway_rows),
        check=check,
    )


async def seed_gateway(url: str, count: int) -> list[gateway_service.Prepared]:
    keyring, hasher = Keyring.parse(CARD_KEYS), Hasher(PEPPER)
    db = Database(create_engine(url))
    now = utcnow()
    columns = [c.name for c in gateway_store.transactions.c]
    try:
        async with db.transaction() as tx:
            accounts = [
                await gateway_service.create_account(
                    tx,
                    name=f"bench-{n}",
                    webhook_url=None,
                    hasher=hasher,
                    keyring=keyring,
                    now=now,
                )
                for n in range(GATEWAY_ACCOUNTS)
            ]
        prepared = []
        for n in range(count):
            card, amount = card_and_cents(n)
            account = accounts[n % GATEWAY_ACCOUNTS].row.id
            prepared.append(
                gateway_service.prepare_transaction(
                    account, amount, card, keyring=keyring, hasher=hasher, now=now
                )
            )
        for part in batches(prepared, 2000):
            async with db.transaction() as tx:
                rows = [gateway_store.row_of(p.record) for p in part]
                await tx.insert(
                    gateway_store.transactions, columns, [[r[c] for c in columns] for r in rows]
                )
    finally:
        await db.engine.dispose()
    return prepared


GATEWAY_FLOOR_UPDATE = """
UPDATE gateway_transactions AS t
SET status = 'approved', error_message = '', decided_at = $2, updated_at = $2
FROM unnest($1::varchar[]) AS d(id)
WHERE t.id = d.id
"""


async def gateway_rows(conn: asyncpg.Connection, part: Sequence[tuple[str, str]]) -> None:
    """What the gateway's worker writes of a batch: the decisions, and the transactions'
    new status (one fixed decision: no rules)."""
    now = utcnow()
    await conn.copy_records_to_table(
        "gateway_decisions",
        columns=("transaction_id", "account_id", "status", "error_message", "brand", "decided_at"),
        records=[(tid, account, "approved", "", "visa", now) for tid, account in part],
    )
    await conn.execute(GATEWAY_FLOOR_UPDATE, [tid for tid, _ in part], now)


# --- banking ---------------------------------------------------------------------------------


def prepare_banking(pg: Server, nats_url: str, count: int, accounts: int) -> Context:
    """``bench/banking.py``'s seeded template and its uniform workload."""
    url = create_database(pg, banking_bench.SEED_DATABASE)
    upgrade(url)
    seeded = asyncio.run(banking_bench.seed(url, nats_url, accounts))
    moves = banking_bench.workload(seeded.accounts, count, seed=accounts)
    now = utcnow()
    envelopes = [
        outbox.event(
            banking_messages.REQUESTS,
            banking_messages.encode_request(banking_bench.transfer(m)),
            at=now,
            key=m[0],
        )
        for m in moves
    ]

    async def applied(conn: AsyncConnection) -> int:
        return await banking_bench.outcomes(conn) + await dead_lettered(conn)

    async def check(url: str) -> dict[str, Any]:
        report = await on_database(url, verify)
        problem = report.problem
        return {
            "refused": await banking_bench.refusals(url),
            "ledger": "intact" if problem is None else f"NOT intact: {problem}",
            "ok": problem is None,
        }

    return Context(
        name="banking",
        template=banking_bench.SEED_DATABASE,
        envelopes=envelopes,
        batch=LEDGER_BATCH,
        applied=applied,
        db_floor=lambda url: banking_bench.write_floor(url, moves, LEDGER_BATCH),
        check=check,
    )


# --- the broker ------------------------------------------------------------------------------


async def empty_broker(url: str) -> None:
    """Delete every stream (and so every consumer): the next run starts on a fresh one."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            await js.delete_stream(str(info.config.name))
    finally:
        await nc.close()


async def load_broker(url: str, envelopes: list[Envelope]) -> None:
    await empty_broker(url)
    await harness.publish(url, envelopes)


async def broker_floor(url: str, envelopes: list[Envelope], batch: int) -> dict[str, Any]:
    """The messages consumed by the simplest nats-py loop (see the module doc)."""
    await load_broker(url, envelopes)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        topic = envelopes[0].topic
        # as many messages unacknowledged as paycore's own consumers allow
        config = ConsumerConfig(max_ack_pending=max(1000, batch * 10))
        sub = await js.pull_subscribe(topic, durable="floor", config=config)
        first = await sub.fetch(batch, timeout=10)
        for msg in first:
            await msg.ack()
        done = len(first)
        with harness.cpu_use() as cores:
            started = time.monotonic()
            while done < len(envelopes):
                for msg in await sub.fetch(batch, timeout=10):
                    await msg.ack()
                    done += 1
            await nc.flush()  # every ack is with the server
            seconds = time.monotonic() - started
        for _ in range(100):  # JetStream applies the acks it has on its own time
            if not (pending := (await sub.consumer_info()).num_ack_pending):
                break
            await asyncio.sleep(0.05)
        assert not pending, f"{pending} messages never acknowledged"
    finally:
        await nc.close()
    return {"counted": done - len(first), "seconds": round(seconds, 2), "cpu_cores": cores}


# --- the workers -----------------------------------------------------------------------------


def run_workers(
    context: Context, count: int, pg: Server, nats_url: str, redis: Server | None, work: Path
) -> dict[str, Any]:
    """``count`` workers on a fresh copy and a freshly loaded broker (see the module doc)."""
    url = fresh_copy(pg, context.template)
    asyncio.run(load_broker(nats_url, context.envelopes))
    if redis is not None:
        asyncio.run(empty_redis(redis.url))
    procs = []
    for n in range(count):
        place = work / f"worker-{n}"
        place.mkdir(parents=True, exist_ok=True)
        env = harness.bench_env(place, database_url=url, broker_url=nats_url, **context.settings)
        procs.append(paycore_process("worker", [context.name], env, place, free_port()))
    try:
        run = asyncio.run(gated(url, procs, context))
        alive = sum(p.popen is not None and p.popen.poll() is None for p in procs)
    finally:
        stop_all(procs)
    logged = [line for p in procs for line in log_lines(p)]
    run |= {
        "dead_letters": asyncio.run(on_database(url, dead_lettered)),
        "workers_alive_at_end": alive,
        "log_lines": len(logged),
        "log_sample": logged[:5],
        "check": asyncio.run(context.check(url)),
    }
    drop_database(pg, url.rsplit("/", 1)[1])
    return run


def stop_all(procs: list[Proc]) -> None:
    """SIGTERM every worker started, all at once, and wait for each (SIGKILL after 30 s); if
    interrupted meanwhile, SIGKILL those left."""
    started = [p for p in procs if p.popen is not None]
    for proc in started:
        assert proc.popen is not None
        if proc.popen.poll() is None:
            proc.popen.send_signal(signal.SIGTERM)
    try:
        for proc in started:
            proc.stop()
    finally:
        for proc in started:
            proc.kill()  # nothing left to do for those that stopped


async def gated(url: str, procs: list[Proc], context: Context) -> dict[str, Any]:
    """Start the workers behind the inbox's lock, then open it and time them; at each poll
    after that, where the database sessions in a transaction are (``SESSIONS``)."""
    sessions: Counter[str] = Counter()
    opened, samples = False, 0
    gate = await asyncpg.connect(dsn(url))
    lock = gate.transaction()

    async def go() -> None:
        nonlocal opened
        await lock.commit()
        opened = True

    async def applied(conn: AsyncConnection) -> int:
        nonlocal samples
        if opened:
            sessions.update({what: n for what, n in (await conn.execute(SESSIONS)).all()})
            samples += 1
        return await context.applied(conn)

    try:
        await lock.start()
        await gate.execute("LOCK TABLE inbox IN EXCLUSIVE MODE")
        began = time.monotonic()
        await asyncio.gather(*(asyncio.to_thread(p.start, 120) for p in procs))
        ready = time.monotonic() - began
        run = await harness.watch(url, applied, len(context.envelopes), go=go)
    finally:
        await gate.close()
    mean = {what: round(n / max(samples, 1), 2) for what, n in sessions.most_common()}
    return {**run, "start_s": round(ready, 2), "pg_sessions": mean}


SESSIONS = text("""
SELECT CASE WHEN state = 'idle in transaction' THEN 'in worker'
            WHEN wait_event IS NULL THEN 'running'
            ELSE wait_event_type || ':' || wait_event END,
       count(*)
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND backend_type = 'client backend' AND state IN ('active', 'idle in transaction')
GROUP BY 1
""")
"""The clients' sessions of the database in a transaction (not autovacuum's, not this one),
by what each does: ``running`` (a statement on a CPU), waiting (``Lock:advisory``,
``IO:WALSync``…) or ``in worker`` (idle in its transaction: PostgreSQL waits for the worker's
next statement)."""


async def empty_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


def log_lines(proc: Proc) -> list[str]:
    """What a worker logged (warnings and worse: ``bench_env``'s level)."""
    text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
    return [line for line in text.splitlines() if line.strip()]


# --- a context's measurements ----------------------------------------------------------------


def measure(
    context: Context,
    workers: list[int],
    pg: Server,
    nats_url: str,
    redis: Server | None,
    work: Path,
) -> list[dict[str, Any]]:
    """The two floors, then each worker count; each run's figures and shares of the floors."""
    common = {"context": context.name, "messages": len(context.envelopes), "batch": context.batch}
    common["body_bytes"] = round(statistics.mean(len(e.body) for e in context.envelopes))
    floor = asyncio.run(broker_floor(nats_url, context.envelopes, context.batch))
    broker = report({**common, "run": "broker floor", "workers": 0, **floor})
    url = fresh_copy(pg, context.template)
    floor = asyncio.run(context.db_floor(url))
    drop_database(pg, url.rsplit("/", 1)[1])
    database = report({**common, "run": "db floor", "workers": 0, **floor})
    runs = [broker, database]
    for count in workers:
        run = run_workers(context, count, pg, nats_url, redis, work / f"{context.name}-{count}")
        label = f"{count} worker" + ("s" if count > 1 else "")
        runs.append(report({**common, "run": label, "workers": count, **run}))
    one = next((r["per_s"] for r in runs if r["workers"] == 1), None)
    for run in runs:
        run["share_of_broker_floor"] = round(run["per_s"] / broker["per_s"], 3)
        run["share_of_db_floor"] = round(run["per_s"] / database["per_s"], 3)
        if run["workers"]:
            run["limit"] = limit(run)
            if one:
                run["vs_one_worker"] = round(run["per_s"] / one, 2)
    return runs


def report(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` with its rate, which is printed."""
    run["per_s"] = round(run["counted"] / run["seconds"], 1)
    print(f"  {run['context']:9} {run['run']:13} {run['per_s']:>10,.0f} msg/s", flush=True)
    return run


def limit(run: dict[str, Any]) -> str:
    """The first resource busy in a worker run, else what the sessions in a transaction mostly
    do (see the module doc)."""
    cores = run["cpu_cores"]
    if cores["machine"] >= BUSY * (os.cpu_count() or 1):
        return "machine"
    if cores.get("paycore worker", 0) / run["workers"] >= BUSY:
        return "worker CPU"
    if cores.get("postgres", 0) >= BUSY:
        return "postgres CPU"
    return next(iter(run["pg_sessions"]), "waits")


# --- the report ------------------------------------------------------------------------------

KINDS = (
    ("workers", "paycore worker"),
    ("bench", "bench"),
    ("postgres", "postgres"),
    ("nats", "nats-server"),
    ("redis", "redis-server"),
    ("other", "other work"),
    ("machine", "machine"),
)


def print_context(runs: list[dict[str, Any]]) -> None:
    first = runs[0]
    print(
        f"\n{first['context']}: {first['messages']:,} messages of {first['body_bytes']} bytes, "
        f"batches of {first['batch']:,}; cores while measured"
    )
    # a kind no run of this context kept busy (Redis but for commerce, say) is left out
    kinds = [
        (k, kind) for k, kind in KINDS if any(r["cpu_cores"].get(kind, 0) >= 0.05 for r in runs)
    ]
    columns = ("run", "msg/s", "vs 1w", "of broker", "of db", *(k for k, _ in kinds), "limit")
    rows = []
    for run in runs:
        cores = run["cpu_cores"]
        rows.append(
            (
                run["run"],
                f"{run['per_s']:,.0f}",
                f"{run['vs_one_worker']:.2f}" if "vs_one_worker" in run else "-",
                f"{run['share_of_broker_floor']:.0%}",
                f"{run['share_of_db_floor']:.0%}",
                *(f"{cores.get(kind, 0):.2f}" for _, kind in kinds),
                run.get("limit", "-"),
            )
        )
    harness.print_table(columns, rows, width=9, first=12)
    for run in runs:
        if run["workers"]:
            check = ", ".join(f"{k} {v}" for k, v in run["check"].items() if k != "ok")
            verdict = "ok" if healthy(run) else "PROBLEM"
            print(
                f"  {run['run']}: {verdict} - {run['dead_letters']} dead letters, "
                f"{run['workers_alive_at_end']} of {run['workers']} alive at the end, "
                f"{run['log_lines']} log lines, {check}; started in {run['start_s']} s"
            )
            where = ", ".join(f"{what} {n:.2f}" for what, n in run["pg_sessions"].items())
            print(f"    sessions in a transaction, mean: {where or 'none seen'}")
            for line in run["log_sample"]:
                print(f"    {line[:200]}")


def healthy(run: dict[str, Any]) -> bool:
    return bool(
        run["check"]["ok"]
        and run["dead_letters"] == 0
        and run["workers_alive_at_end"] == run["workers"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages",
        type=int,
        help=f"per context (default {FULL['messages']:,}; --quick {QUICK['messages']:,})",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts, one run each"
    )
    parser.add_argument("--contexts", nargs="+", default=list(CONTEXTS), choices=CONTEXTS)
    parser.add_argument("--quick", action="store_true", help="a small run (smoke)")
    parser.add_argument("--keep", help="keep logs and data in this folder instead of a temp dir")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/...)")
    args = parser.parse_args()
    size = "quick" if args.quick else "full"
    messages: int = args.messages or (QUICK if args.quick else FULL)["messages"]
    name = "scale_quick.json" if args.quick else "scale.json"
    out: Path = args.out or ROOT / "bench" / "results" / name
    if messages < 3 * LEDGER_BATCH and "banking" in args.contexts:
        parser.error(f"--messages: at least {3 * LEDGER_BATCH:,} (three ledger batches)")
    signal.signal(signal.SIGTERM, interrupted)

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as tmp, ExitStack() as servers:
        work = Path(args.keep) if args.keep else Path(tmp)
        pg = start_postgres(work / "pg")
        servers.callback(pg.stop)  # each stopped even if stopping another one fails
        nats_server = start_nats(work / "nats")
        servers.callback(nats_server.stop)
        redis = start_redis(work / "redis") if "commerce" in args.contexts else None
        if redis is not None:
            servers.callback(redis.stop)
        for context_name in args.contexts:
            began = time.monotonic()
            if context_name == "commerce":
                assert redis is not None
                context = prepare_commerce(pg, redis, messages)
            elif context_name == "gateway":
                context = prepare_gateway(pg, messages)
            else:
                context = prepare_banking(pg, nats_server.url, messages, BANKING_ACCOUNTS[size])
            run_sql(pg, context.template, "VACUUM ANALYZE")
            print(f"{context_name}: prepared in {time.monotonic() - began:.1f} s", flush=True)
            commerce_redis = redis if context_name == "commerce" else None
            runs += measure(context, args.workers, pg, nats_server.url, commerce_redis, work)
    settings = {"messages": messages, "workers": args.workers, "contexts": args.contexts}
    settings |= {"banking_accounts": BANKING_ACCOUNTS[size], "quick": args.quick}
    result = harness.write_results(out, "workers per context", runs, settings=settings)
    for context_name in args.contexts:
        print_context([r for r in runs if r["context"] == context_name])
    print(f"\nmachine: {result['machine']}\nwritten to {out}")


def interrupted(signum: int, frame: object) -> None:
    """SIGTERM as Ctrl-C: every process and server started is stopped on the way out."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
