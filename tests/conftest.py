"""Shared by every test tier: the helpers (``servers``, ``procs``) on the import path, and
real servers on 127.0.0.1 built on ``tests/servers.py``.

Each server starts the first time a test asks for it and stops at session end.
A missing server binary fails the test (with the install hint); it never skips.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

import rinha  # noqa: E402
import servers  # noqa: E402
from paycore import contexts  # noqa: E402
from servers import Server  # noqa: E402

contexts.load_all()  # every context's tables on the shared metadata


def _serve(
    start: Callable[[Path], Server], tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Server]:
    """Start one server under a fresh temp dir, yield it, stop it afterwards."""
    server = _start_or_fail(start, tmp_path_factory.mktemp(name))
    try:
        yield server
    finally:
        server.stop()


def _start_or_fail(start: Callable[[Path], Server], base: Path) -> Server:
    """Start a server; a missing binary fails the test with its install hint."""
    try:
        return start(base)
    except servers.ServerNotInstalledError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """PostgreSQL 15; ``url`` is ``postgresql+asyncpg://...``, ``extra["dsn"]`` plain libpq."""
    yield from _serve(servers.start_postgres, tmp_path_factory, "postgres")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Redis with appendonly; ``url`` is ``redis://127.0.0.1:PORT/0``."""
    yield from _serve(servers.start_redis, tmp_path_factory, "redis")


@pytest.fixture(scope="session")
def rabbitmq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """RabbitMQ; ``url`` is ``amqp://guest:guest@127.0.0.1:PORT/``."""
    yield from _serve(servers.start_rabbitmq, tmp_path_factory, "rabbitmq")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """nats-server with JetStream file storage fsynced on every write."""
    yield from _serve(servers.start_nats, tmp_path_factory, "nats")


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tansu Kafka-protocol broker (memory storage); ``extra["bootstrap"]`` is host:port."""
    yield from _serve(servers.start_tansu, tmp_path_factory, "kafka")


@pytest.fixture
def postgres_url(postgres_server: Server) -> Iterator[str]:
    """URL of a fresh, uniquely named database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = servers.create_database(postgres_server, name)
    yield url
    servers.drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def processors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rinha.Processors]:
    """The two Rinha payment processor simulators (`paycore processors`) as a process; tests
    reset them (delay, failure, payments) before use."""
    with rinha.running_processors(tmp_path_factory.mktemp("processors")) as running:
        yield running
