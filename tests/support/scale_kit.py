"""The scale tier's deployment and load: a NATS JetStream cluster, two APIs and two workers per
context on one PostgreSQL, and a steady stream of operations for commerce (orders), gateway
(card transactions) and banking's ledger (transfers), each counted once applied."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
from banking_kit import as_customer, body, deposit_sync, open_account_sync, sign_up_sync
from gateway_kit import create_account, gateway_settings, transaction
from procs import SECRETS, Proc, paycore_env, paycore_process
from servers import Server, free_port, rabbitmqctl
from sqlalchemy import func, select

from paycore.banking import store as banking_store
from paycore.banking.ledger import store as ledger_store
from paycore.commerce.analytics import store as analytics_store
from paycore.gateway import store as gateway_store
from paycore.platform.persistence.db import create_engine

CONTEXTS = ("commerce", "gateway", "banking")
PRODUCTS = {"pen": 1.10, "book": 25.00, "bag": 99.99}


@dataclass
class Platform:
    """Two APIs and two workers of each context, on one database and a broker cluster."""

    env: dict[str, str]
    apis: dict[str, list[Proc]]
    workers: dict[str, list[Proc]]

    def bases(self, context: str) -> list[str]:
        return [f"http://127.0.0.1:{p.args[-1]}" for p in self.apis[context]]


@contextlib.contextmanager
def platform(
    work: Path, database_url: str, broker_urls: list[str], redis_url: str, copies: int = 2
) -> Iterator[Platform]:
    """``copies`` of ``paycore api`` and of ``paycore worker`` per context (started a few at a
    time, each ready on its ``/readyz``), the n-th process on the n-th of ``broker_urls`` in
    turn. Stopped on leaving."""
    env = paycore_env(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=work / "data",
        log_level="WARNING",
        **{**SECRETS, **gateway_settings()},
    )
    urls = itertools.cycle(broker_urls)

    def process(role: str, context: str) -> Proc:
        port = free_port()
        own = {"PAYCORE_BROKER_URL": next(urls), "PAYCORE_DATA_DIR": str(work / f"data-{port}")}
        proc = paycore_process(role, [context], {**env, **own}, work, port)
        proc.log_path = work / f"{context}-{proc.log_path.name}"
        return proc

    apis = {c: [process("api", c) for _ in range(copies)] for c in CONTEXTS}
    workers = {c: [process("worker", c) for _ in range(copies)] for c in CONTEXTS}
    every = [p for procs in (*apis.values(), *workers.values()) for p in procs]
    try:
        with ThreadPoolExecutor(4) as starting:  # four at a time: two cores
            list(starting.map(lambda p: p.start(90), every))
        yield Platform(env, apis, workers)
    finally:
        for proc in every:
            if proc.popen is not None:
                proc.stop()


# --- what each context is asked for, and how many it has applied ------------------------


@dataclass
class Load:
    """One context's operations: ``ask(http, n)`` the n-th (which must be accepted), and
    ``applied(conn)`` how many are applied. ``asked`` maps each accepted operation's id to n."""

    name: str
    bases: list[str]
    ask: Callable[[httpx.AsyncClient, int], Awaitable[str]]
    applied: Callable[[Any], Awaitable[int]]
    asked: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def commerce_load(bases: list[str], customers: int = 10) -> Load:
    with httpx.Client(base_url=bases[0], timeout=30) as http:
        for n in range(customers):
            answer = http.post(
                "/commerce/customers", json={"email": f"c{n}@example.com", "username": f"c{n}"}
            )
            assert answer.status_code == 201, answer.text
        for name, value in PRODUCTS.items():
            answer = http.post("/commerce/products", json={"name": name, "value": value})
            assert answer.status_code == 201, answer.text

    async def ask(http: httpx.AsyncClient, n: int) -> str:
        order = {
            "email": f"c{n % customers}@example.com",
            "products": [{"name": p, "quantity": 1 + (n + i) % 4} for i, p in enumerate(PRODUCTS)],
        }
        answer = await http.post("/commerce/orders", json=order)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def applied(conn: Any) -> int:
        return int(await conn.scalar(count_of(analytics_store.analytics_orders)) or 0)

    return Load("commerce", bases, ask, applied)


def gateway_load(bases: list[str], merchants: int = 4) -> Load:
    secrets = [create_account(bases[0], f"shop-{n}")["secret"] for n in range(merchants)]

    async def ask(http: httpx.AsyncClient, n: int) -> str:
        answer = await http.post(
            "/gateway/transactions",
            json=transaction(n),
            headers={"Authorization": f"Bearer {secrets[n % merchants]}"},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])

    async def applied(conn: Any) -> int:
        return int(await conn.scalar(count_of(gateway_store.decisions)) or 0)

    return Load("gateway", bases, ask, applied)


def banking_load(bases: list[str], accounts: int = 10, deposit: int = 10_000_00) -> Load:
    """Transfers of 1.00 to 99.99 among ``accounts`` accounts holding ``deposit`` each (one in
    forty to an account that does not exist, refused); ``extra`` has the plan."""
    with httpx.Client(base_url=bases[0], timeout=30) as http:
        secrets = [sign_up_sync(http, 9_000 + n)[1] for n in range(accounts)]
        ids = [open_account_sync(http, secret) for secret in secrets]
        for secret, account in zip(secrets, ids, strict=True):
            deposit_sync(http, secret, account, deposit)
    planned: dict[str, tuple[int, str, int]] = {}

    async def ask(http: httpx.AsyncClient, n: int) -> str:
        payer = n % accounts
        payee = ids[(payer + 1 + n // accounts % (accounts - 1)) % accounts]
        if n % 40 == 39:
            payee = f"00000000-0000-4000-8000-{n:012d}"
        transfer_id = f"5ca1e000-0000-4000-8000-{n:012d}"
        planned[transfer_id] = (payer, payee, 100 + n * 7919 % 9900)
        content = body(
            id=transfer_id,
            from_account_id=ids[payer],
            to_account_id=payee,
            amount=planned[transfer_id][2],
        )
        answer = await http.post(
            "/banking/transfers", content=content, headers=as_customer(secrets[payer])
        )
        assert answer.status_code == 202, answer.text
        return transfer_id

    async def applied(conn: Any) -> int:
        r, e, rejected = banking_store.requests, ledger_store.entries, banking_store.rejections
        posted = await conn.scalar(count_of(e.join(r, r.c.id == e.c.id)))
        return int(posted or 0) + int(await conn.scalar(count_of(rejected)) or 0)

    extra = {"accounts": ids, "secrets": secrets, "planned": planned, "deposit": deposit}
    return Load("banking", bases, ask, applied, extra=extra)


def count_of(table: Any) -> Any:
    return select(func.count()).select_from(table)


# --- driving them at a steady rate, sampling what is applied ---------------------------------


async def drive(load: Load, rate: float, seconds: float, gate: int = 32) -> None:
    """Ask for ``rate`` operations a second for ``seconds`` (on a fixed schedule, whatever the
    answers take), alternating between the context's APIs; returns when all are answered."""
    clients = [httpx.AsyncClient(base_url=b, timeout=60) for b in load.bases]
    limit = asyncio.Semaphore(gate * len(clients))
    started = time.monotonic()

    async def one(n: int) -> None:
        async with limit:
            load.asked[await load.ask(clients[n % len(clients)], n)] = n

    try:
        tasks = []
        for n in itertools.count():
            after = n / rate  # compared as is: ``started + after - started`` may round below
            if after >= seconds:
                break
            await asyncio.sleep(max(0.0, started + after - time.monotonic()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()


@dataclass
class Samples:
    """``(seconds since the start, applied)`` per context, every ``every`` seconds."""

    every: float = 1.0
    points: dict[str, list[tuple[float, int]]] = field(default_factory=dict)

    def rate(self, context: str, start: float, end: float) -> float:
        """Operations applied per second between two instants (the samples nearest them)."""
        points = self.points[context]
        first = min(points, key=lambda p: abs(p[0] - start))
        last = min(points, key=lambda p: abs(p[0] - end))
        return (last[1] - first[1]) / max(last[0] - first[0], 1e-9)


async def sample(
    database_url: str, loads: list[Load], samples: Samples, stop: asyncio.Event
) -> None:
    """Count what each load has applied, every ``samples.every`` seconds, until ``stop``."""
    engine = create_engine(database_url)
    started = time.monotonic()
    try:
        while not stop.is_set():
            async with engine.connect() as conn:
                for load in loads:
                    count = await load.applied(conn)
                    samples.points.setdefault(load.name, []).append(
                        (time.monotonic() - started, count)
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), samples.every)
    finally:
        await engine.dispose()


async def nats_consumers_busy(urls: list[str]) -> dict[str, tuple[int, int]]:
    """Every durable consumer of the cluster with messages not yet delivered or not yet
    acknowledged: ``{stream/consumer: (pending, ack pending)}`` (empty: nothing stuck)."""
    client = await nats.connect(urls)
    busy = {}
    try:
        js = client.jetstream()
        for stream in await js.streams_info():
            for info in await js.consumers_info(stream.config.name):
                if info.num_pending or info.num_ack_pending:
                    busy[f"{stream.config.name}/{info.name}"] = (
                        info.num_pending,
                        info.num_ack_pending,
                    )
    finally:
        await client.close()
    return busy


def rabbitmq_queues_busy(node: Server) -> dict[str, tuple[int, int]]:
    """Every queue of the cluster with messages ready or unacknowledged: ``{queue: (ready,
    unacknowledged)}`` (empty: nothing stuck); the queues of what nobody consumes (a topic's
    unrouted messages, dead letters) left out."""
    queues = rabbitmqctl(node, "list_queues", "name", "messages_ready", "messages_unacknowledged")
    return {
        q["name"]: (q["messages_ready"], q["messages_unacknowledged"])
        for q in queues
        if (q["messages_ready"] or q["messages_unacknowledged"])
        and not q["name"].startswith("paycore.unrouted.")
        and not q["name"].endswith(".dlq")
    }
