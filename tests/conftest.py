"""Shared by every test: every context's tables on the metadata, and real servers on
127.0.0.1 built on ``tests/support/servers.py`` (``tests/support`` is on the import path, see
``pyproject.toml``). Each context's tests live in ``tests/<context>/<tier>/``, the platform's in
``tests/platform/<tier>/``; a tier's fixtures come from ``tests/support/<tier>_fixtures.py``.

Each server starts the first time a test asks for it and stops at session end.
A missing server binary fails the test (with the install hint); it never skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import servers
from servers import Server

from paycore import contexts

contexts.load_all()  # every context's tables on the shared metadata


@pytest.fixture(scope="session", autouse=True)
def _data_dir_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``PAYCORE_DATA_DIR`` in a temp dir for the whole run, so that nothing a test runs (in
    this process, or started through ``procs.paycore_env``) uses the user's data folder."""
    saved = os.environ.get("PAYCORE_DATA_DIR")
    os.environ["PAYCORE_DATA_DIR"] = str(tmp_path_factory.mktemp("paycore-data"))
    yield
    if saved is None:
        del os.environ["PAYCORE_DATA_DIR"]
    else:
        os.environ["PAYCORE_DATA_DIR"] = saved


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
