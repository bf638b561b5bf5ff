"""Shared fixtures of the unit tests: a real SQLite file database, a non-UTC local clock, an
in-memory broker, a fake DNS."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.messaging.bus import BatchHandler, Envelope, Subscription
from paycore.platform.persistence import db


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite file database with every paycore table."""
    eng = db.create_engine("sqlite+aiosqlite:///" + str(tmp_path / "t.db"))
    async with eng.begin() as conn:
        await conn.run_sync(db.metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def count_rows(engine: AsyncEngine) -> Callable[..., Awaitable[int]]:
    """``await count_rows(table, *where)``: how many rows of a table match."""

    async def count(table: Table, *where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(table)
        for clause in where:
            query = query.where(clause)
        async with engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    return count


@pytest.fixture
def local_time_utc_minus_3() -> Iterator[None]:
    """The host's local time zone is UTC-3 (a server in Brazil) for the duration of a test."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "BRT3"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


class FakeBus:
    """An in-memory broker: keeps what is published; consuming is driven by the tests."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []
        self.topics: set[str] = set()
        self.connected = False

    async def connect(self) -> None:
        self.connected = True

    async def close(self) -> None:
        self.connected = False

    async def ensure_topic(self, topic: str) -> None:
        self.topics.add(topic)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.published.extend(envelopes)

    async def subscribe(self, subscription: Subscription, handler: BatchHandler) -> None:
        raise AssertionError("the unit tests call Consumer.handle_batch directly")

    async def stop_consuming(self) -> None:
        return None


@pytest.fixture
def fake_bus() -> FakeBus:
    return FakeBus()


PUBLIC_IP = "93.184.215.14"
NAMES = {
    "shop.example": [PUBLIC_IP],
    "hooks.example": [PUBLIC_IP],
    "v6.example": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "localhost": ["127.0.0.1", "::1"],
    "intranet.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "split.example": [PUBLIC_IP, "192.168.0.9"],  # one public, one private record
}


class FakeDNS:
    """A resolver for :class:`WebhookTargets`: the names above (``names`` can be changed,
    as a DNS record would), IP literals as themselves, anything else unknown."""

    def __init__(self) -> None:
        self.names = {name: list(addresses) for name, addresses in NAMES.items()}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.names[host]


@pytest.fixture
def fake_dns() -> FakeDNS:
    return FakeDNS()
