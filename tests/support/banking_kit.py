"""What banking's tests and benchmark share: its settings, valid CPFs, customers and their
accounts through the API (async for the in-process tests, sync for the chaos tests driving real
processes), banking deployed as processes for the chaos tests, a tap that records what crosses
banking's topics, and a poll with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from procs import SECRETS, Proc, paycore_env, paycore_process, until
from servers import Server, free_port, start_nats
from sqlalchemy import select

from paycore.banking import messages
from paycore.banking import store as banking_store
from paycore.banking.domain import cpf_check_digits
from paycore.banking.ledger import store as ledger_store
from paycore.bootstrap import build_api, build_worker
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Bus, Delivery, Envelope, Subscription
from paycore.platform.money import json_number
from paycore.platform.persistence.db import create_engine
from paycore.platform.settings import Settings
from paycore.schema import upgrade

T = TypeVar("T")
ADMIN_TOKEN = "banking-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def cpf(n: int) -> str:
    """A valid CPF (check digits right), different for each ``n`` (formatted 123.456.789-09)."""
    base = f"{(n * 7919 + 100_000_000) % 1_000_000_000:09d}"
    if base == base[0] * 9:
        base = f"{int(base) + 1:09d}"
    digits = base + cpf_check_digits(base)
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


def tid() -> str:
    """A transfer id, as a client chooses one."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Customer:
    id: str
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def sign_up(http: httpx.AsyncClient, name: str, n: int) -> Customer:
    answer = await http.post("/banking/customers", json={"name": name, "cpf": cpf(n)})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return Customer(body["id"], body["secret"])


async def open_account(http: httpx.AsyncClient, customer: Customer) -> str:
    answer = await http.post("/banking/accounts", headers=customer.auth)
    assert answer.status_code == 201, answer.text
    account_id: str = answer.json()["id"]
    return account_id


async def deposit(
    http: httpx.AsyncClient, customer: Customer, account_id: str, amount: Any
) -> None:
    answer = await http.post(
        f"/banking/accounts/{account_id}/deposits", json={"amount": amount}, headers=customer.auth
    )
    assert answer.status_code == 201, answer.text


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = 60, every: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(every)


@dataclass
class Tap:
    """Records what crosses banking's event topics, read with a group of its own."""

    bus: Bus
    seen: list[Delivery] = field(default_factory=list)

    async def handle(self, deliveries: Sequence[Delivery]) -> None:
        self.seen.extend(deliveries)

    def events(self, topic: str) -> list[dict[str, Any]]:
        """The events seen on ``topic`` (not the probes), each message once: the broker
        delivers at least once (a message redelivered to the tap keeps its id), as every
        consumer of the platform takes it."""
        messages_seen = {d.id: d for d in self.seen if d.topic == topic}
        found = (orjson.loads(d.body) for d in messages_seen.values())
        return [event for event in found if "probe" not in event]

    def ids(self, topic: str) -> list[str]:
        return [event["id"] for event in self.events(topic)]

    def forget_up_to(self, probe: bytes) -> None:
        """Forget what each topic delivered up to its ``probe``: older than the tap (a new
        group is handed a stream's past, and other tests' events may be in it)."""
        kept, after = [], set()
        for delivery in self.seen:
            if delivery.body == probe:
                after.add(delivery.topic)
            elif delivery.topic in after:
                kept.append(delivery)
        self.seen = kept


@contextlib.asynccontextmanager
async def tapped(
    broker_url: str, topics: Sequence[str] = messages.TOPICS[1:]
) -> AsyncIterator[Tap]:
    """A tap subscribed to ``topics``, yielded once it receives: a probe published on each
    topic has come back (so no event published afterwards can miss it, whatever the broker),
    and what came before it is forgotten."""
    bus = create_bus(broker_url)
    await bus.connect()
    tap = Tap(bus)
    group = f"tap-{uuid.uuid4().hex[:8]}"
    tasks = []
    for topic in topics:
        await bus.ensure_topic(topic)
        tasks.append(asyncio.create_task(bus.subscribe(Subscription(topic, group), tap.handle)))
    probe = uuid.uuid4().hex
    await bus.publish(
        [Envelope(t, orjson.dumps({"probe": probe}), id=f"{probe}-{t}") for t in topics]
    )

    marker = orjson.dumps({"probe": probe})

    async def probed() -> bool:
        return sum(d.body == marker for d in tap.seen) >= len(topics)

    try:
        await eventually(probed, timeout=30)
        tap.forget_up_to(marker)
        yield tap
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()


@contextlib.asynccontextmanager
async def serving(settings: Settings, *, worker: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Banking's API (and its worker: the ledger consumer, the expiry loop) as ``paycore api
    --context banking`` and ``paycore worker --context banking`` build them, in this process;
    a client of the API."""
    api = build_api(settings, ["banking"])
    async with contextlib.AsyncExitStack() as stack:
        if worker:
            app = build_worker(settings, ["banking"])
            await stack.enter_async_context(app.router.lifespan_context(app))
        await stack.enter_async_context(api.router.lifespan_context(api))
        transport = httpx.ASGITransport(app=api)
        http = httpx.AsyncClient(transport=transport, base_url="http://paycore", timeout=30)
        yield await stack.enter_async_context(http)


def banking_settings(**extra: Any) -> dict[str, Any]:
    """The ``PAYCORE_*`` settings (without the prefix) of a banking deployment under test."""
    return {**SECRETS, "admin_token": ADMIN_TOKEN, **extra}


def as_customer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


def body(**fields: Any) -> bytes:
    """A JSON body; ``amount``, given in integer cents, is written as an exact number with two
    decimals (``12.30``)."""
    if "amount" in fields:
        fields["amount"] = json_number(fields["amount"])
    return orjson.dumps(fields)


def sign_up_sync(http: httpx.Client, n: int) -> tuple[str, str]:
    """Customer ``n`` (named, with a CPF of their own): their id and secret."""
    answer = http.post(
        "/banking/customers",
        content=body(name=f"Customer {n}", cpf=cpf(n)),
        headers={"Content-Type": "application/json"},
    )
    answer.raise_for_status()
    created = answer.json()
    return created["id"], created["secret"]


def open_account_sync(http: httpx.Client, secret: str) -> str:
    answer = http.post("/banking/accounts", headers=as_customer(secret))
    answer.raise_for_status()
    account_id: str = answer.json()["id"]
    return account_id


def deposit_sync(http: httpx.Client, secret: str, account_id: str, cents: int) -> None:
    answer = http.post(
        f"/banking/accounts/{account_id}/deposits",
        content=body(amount=cents),
        headers=as_customer(secret),
    )
    answer.raise_for_status()


def banking_on(tmp_path: Path, postgres_url: str, broker_url: str, **extra: Any) -> Settings:
    """The settings of banking on a migrated PostgreSQL and a broker, every secret given
    (PostgreSQL generates none)."""
    upgrade(postgres_url)
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        database_url=postgres_url,
        broker_url=broker_url,
        **banking_settings(**extra),
    )


@dataclass
class Deployment:
    """Banking as processes: its API and its worker, their environment, their broker."""

    env: dict[str, str]
    api: Proc
    worker: Proc
    broker: Server
    base: str  # the API's address


@contextlib.asynccontextmanager
async def deployed(tmp_path: Path, postgres_url: str, **settings: Any) -> AsyncIterator[Deployment]:
    """``paycore api`` and ``paycore worker --context banking`` started on a migrated
    PostgreSQL and a NATS server of their own (messages not acknowledged within 3 s are
    delivered again: a killed worker's come back soon), logging warnings only; ``settings``
    are more ``PAYCORE_*`` settings (without the prefix). Stopped on leaving."""
    await asyncio.to_thread(upgrade, postgres_url)
    broker = start_nats(tmp_path / "broker")
    api_port = free_port()
    env = paycore_env(
        database_url=postgres_url,
        broker_url=f"{broker.url}?ack_wait=3",
        data_dir=tmp_path / "data",
        log_level="WARNING",
        **banking_settings(**settings),
    )
    api = paycore_process("api", ["banking"], env, tmp_path, api_port)
    worker = paycore_process("worker", ["banking"], env, tmp_path, free_port())
    try:
        for proc in (api, worker):
            await asyncio.to_thread(proc.start)
        yield Deployment(env, api, worker, broker, f"http://127.0.0.1:{api_port}")
    finally:
        for proc in (api, worker):
            if proc.popen is not None:
                await asyncio.to_thread(proc.stop)
        broker.stop()


def banking_up(tmp_path: Path, admin_token: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The whole platform under ``paycore up`` as the README's tours run it (Ctrl-C on
    leaving, which must end it cleanly): the API's address and the environment a user's shell
    would have, once banking's line is in the banner."""
    api_port = free_port()
    env = paycore_env(
        api_port=api_port,
        worker_port=free_port(),
        nats_port=free_port(),
        payments_default_url=f"http://127.0.0.1:{free_port()}",
        payments_fallback_url=f"http://127.0.0.1:{free_port()}",
        data_dir=tmp_path / "data",
        admin_token=admin_token,
    )
    up = Proc(["up"], env, tmp_path / "up.log", f"http://127.0.0.1:{api_port}/readyz")
    up.start()
    try:
        line = f"banking    http://127.0.0.1:{api_port}/docs#/banking"  # in the banner
        until(lambda: line in up.log_path.read_text(), timeout=30)
        yield f"127.0.0.1:{api_port}", env
    finally:
        assert up.popen is not None
        up.popen.send_signal(signal.SIGINT)
        assert up.popen.wait(timeout=60) == 0, up.log_tail()


async def transfer_outcomes(url: str) -> tuple[dict[str, tuple[str, str, int]], dict[str, str]]:
    """What became of the transfers customers asked for: their journal entries (id -> debit
    account, credit account, cents) and their refusals (id -> reason)."""
    r, e, rejections = banking_store.requests, ledger_store.entries, banking_store.rejections
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            query = select(e.c.id, e.c.debit_account_id, e.c.credit_account_id, e.c.amount)
            posted = {
                row.id: (row.debit_account_id, row.credit_account_id, row.amount)
                for row in await conn.execute(query.join_from(e, r, r.c.id == e.c.id))
            }
            refused = dict((await conn.execute(select(rejections.c.id, rejections.c.reason))).all())
    finally:
        await engine.dispose()
    return posted, refused
