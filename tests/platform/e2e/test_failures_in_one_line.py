"""Commands run as a user runs them while the server they need is not there (a closed port on
127.0.0.1), or their database was never migrated: each gives up within seconds with one line
saying what it tried and what to do, exit status 1, and nothing of the client libraries (no
traceback, no log record)."""

from __future__ import annotations

from pathlib import Path

import pytest
from procs import SECRETS, paycore_env, paycore_run
from servers import free_port

BOUND_SECONDS = 15  # a hang detector: the connect timeout is 5 s


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:{port}", "nats://127.0.0.1:{port} (connection refused)"),
        ("redis://127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0 (connection refused)"),
        (
            "amqp://guest:secret@127.0.0.1:{port}/",
            "amqp://guest:***@127.0.0.1:{port}/ (connection refused)",
        ),
        ("kafka://127.0.0.1:{port}", "kafka://127.0.0.1:{port} (no bootstrap server answered)"),
    ],
)
def test_publishing_without_a_broker_fails_fast_in_one_line(
    tmp_path: Path, url: str, shown: str
) -> None:
    port = free_port()
    env = paycore_env(broker_url=url.format(port=port), data_dir=tmp_path)
    done, took = paycore_run(env, "publish", "orders", "--count", "10")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cannot reach the broker at {shown.format(port=port)}; "
        "start it with `paycore up` or set PAYCORE_BROKER_URL"
    ]
    assert took < BOUND_SECONDS


@pytest.mark.parametrize(
    "command",
    [["dead-letters", "list"], ["dead-letters", "replay", "--topic", "t"], ["migrate"], ["api"]],
)
def test_commands_without_their_postgresql_fail_fast_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    port = free_port()
    url = f"postgresql+asyncpg://paycore:secret@127.0.0.1:{port}/paycore"
    env = paycore_env(database_url=url, data_dir=tmp_path, **SECRETS)  # configured: reach it
    done, took = paycore_run(env, *command)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cannot reach the database at postgresql+asyncpg://paycore:***@127.0.0.1:{port}/paycore "
        "(connection refused); start it or set PAYCORE_DATABASE_URL"
    ]
    assert took < BOUND_SECONDS


def test_a_worker_without_its_broker_fails_fast_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = paycore_env(broker_url=f"nats://127.0.0.1:{port}", data_dir=tmp_path)
    assert paycore_run(env, "migrate")[0].returncode == 0
    done, took = paycore_run(env, "worker", "--context", "fulfillment", "--port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cannot reach the broker at nats://127.0.0.1:{port} (connection refused); "
        "start it with `paycore up` or set PAYCORE_BROKER_URL"
    ]
    assert took < BOUND_SECONDS


@pytest.mark.parametrize("role", ["api", "worker"])
def test_a_process_on_a_database_never_migrated_says_to_migrate(tmp_path: Path, role: str) -> None:
    env = paycore_env(data_dir=tmp_path)
    done, _ = paycore_run(env, role, "--port", str(free_port()))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"the database at sqlite+aiosqlite:///{tmp_path}/paycore.db has no paycore tables: "
        "run `paycore migrate`"
    ]
