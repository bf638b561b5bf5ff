"""An API process killed (SIGKILL) in the middle of an order placed with an ``Idempotency-Key``:
the client's retry, sent to another API instance, proceeds once the dead request's short lease
has run out (not after a minute), and the order exists exactly once — also when the dead
request's write, already sent to the database, lands after its process died.

The request is held in its handler by the database itself: the test's own connection holds an
``ACCESS EXCLUSIVE`` lock on ``commerce_orders``, so the order's write waits after the key was
claimed. Two API processes on PostgreSQL and NATS, started as a user starts them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from procs import SECRETS, Proc, paycore_env, paycore_process, until
from servers import free_port, start_nats

from paycore.schema import upgrade

T = TypeVar("T")
LEASE_SECONDS = 1
KEY = "order-after-crash-1"
ORDER = {"email": "ana@example.com", "products": [{"name": "caneta", "quantity": 3}]}


class Database:
    """Connections of the test's own, on an event loop in a thread of its own (the test is
    synchronous): one holds the table lock between calls."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._locker: asyncpg.Connection | None = None

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=60)

    def fetchval(self, sql: str) -> Any:
        async def query() -> Any:
            conn = await asyncpg.connect(self._dsn)
            try:
                return await conn.fetchval(sql)
            finally:
                await conn.close()

        return self.run(query())

    def lock(self, table: str) -> None:
        async def take() -> None:
            self._locker = await asyncpg.connect(self._dsn)
            await self._locker.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

        self.run(take())

    def unlock(self) -> None:
        async def release() -> None:
            assert self._locker is not None
            await self._locker.execute("ROLLBACK")
            await self._locker.close()

        self.run(release())

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


@dataclass
class Deployment:
    apis: list[Proc]
    bases: list[str]
    db: Database


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str) -> Iterator[Deployment]:
    """Two API processes on PostgreSQL and a NATS of their own: the orders they publish,
    consumed by no worker here, must not reach the next test's analytics worker."""
    upgrade(postgres_url)
    nats = start_nats(tmp_path / "nats")
    ports = [free_port(), free_port()]
    env = paycore_env(
        database_url=postgres_url,
        broker_url=nats.url,
        data_dir=tmp_path / "data",
        idempotency_lease_seconds=LEASE_SECONDS,
        **SECRETS,  # on PostgreSQL nothing is generated: every secret is given
    )
    apis = [paycore_process("api", ["commerce"], env, tmp_path, port) for port in ports]
    db = Database(postgres_url.replace("+asyncpg", ""))
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for api in apis:
            api.start()
        with httpx.Client(base_url=bases[0], timeout=10) as http:
            customer = {"email": ORDER["email"], "username": "ana"}
            assert http.post("/commerce/customers", json=customer).status_code == 201
            product = {"name": "caneta", "value": 2.50}
            assert http.post("/commerce/products", json=product).status_code == 201
        for base in bases:  # each API's catalog cache and block of order ids, ready
            assert httpx.post(base + "/commerce/orders", json=ORDER, timeout=10).status_code == 201
        yield Deployment(apis, bases, db)
    finally:
        for api in apis:
            if api.popen is not None:
                api.stop()
        db.close()
        nats.stop()


def _orders(db: Database) -> int:
    return int(db.fetchval("SELECT count(*) FROM commerce_orders"))


def _kill_mid_request(deployment: Deployment) -> None:
    """Send the order to the first API while the orders table is locked, wait until its key is
    claimed and its write waits for the lock, then SIGKILL that API."""
    db = deployment.db
    db.lock("commerce_orders")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            httpx.post,
            deployment.bases[0] + "/commerce/orders",
            json=ORDER,
            headers={"Idempotency-Key": KEY},
            timeout=60,
        )
        until(
            lambda: (
                db.fetchval(
                    f"SELECT count(*) FROM idempotency_keys WHERE key = '{KEY}' AND status IS NULL"  # noqa: S608
                )
                and db.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ),
            timeout=30,
        )
        deployment.apis[0].kill()


def _retry(base: str) -> httpx.Response:
    """What a client does with a 409 in progress: wait as told, send the same request again."""
    deadline = time.monotonic() + 30  # a bound on a hang, far above the lease
    while True:
        answer = httpx.post(
            base + "/commerce/orders", json=ORDER, headers={"Idempotency-Key": KEY}, timeout=10
        )
        if answer.json().get("code") != "idempotency-key-in-progress":
            return answer
        assert time.monotonic() < deadline, answer.text
        time.sleep(min(float(answer.headers["retry-after"]), 0.2))


def test_a_retry_after_the_api_died_proceeds_and_the_order_exists_once(
    deployment: Deployment,
) -> None:
    before = _orders(deployment.db)
    _kill_mid_request(deployment)
    killed = time.monotonic()
    # the database notices its dead client and ends that backend (the test does it at once)
    deployment.db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deployment.db.unlock()

    placed = _retry(deployment.bases[1])
    waited = time.monotonic() - killed
    assert placed.status_code == 201, placed.text
    assert waited < 15  # generous; before the lease, the key stayed locked for 60 s
    assert _orders(deployment.db) == before + 1
    again = _retry(deployment.bases[1])
    assert (again.status_code, again.headers["idempotent-replayed"]) == (201, "true")
    assert again.json() == placed.json()


def test_a_dead_requests_write_that_lands_late_is_the_only_effect(
    deployment: Deployment,
) -> None:
    before = _orders(deployment.db)
    _kill_mid_request(deployment)
    deployment.db.unlock()  # the dead API's statement, already sent, now commits
    until(lambda: _orders(deployment.db) == before + 1, timeout=30)

    answer = _retry(deployment.bases[1])
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "idempotency-key-outcome-unknown"
    assert _orders(deployment.db) == before + 1
