"""`paycore up` started as a user starts it, driven over HTTP and through the broker."""

from __future__ import annotations

import asyncio
import gzip
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import nats
import orjson
import pytest
from procs import SECRETS, paycore_env, paycore_run, until, wait_ready
from servers import free_port


def free_ports() -> dict[str, Any]:
    """Every port `up` listens on, free ones: the API, the worker, NATS, the simulators."""
    return {
        "api_port": free_port(),
        "worker_port": free_port(),
        "nats_port": free_port(),
        "payments_default_url": f"http://127.0.0.1:{free_port()}",
        "payments_fallback_url": f"http://127.0.0.1:{free_port()}",
    }


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[dict[str, Any]]:
    ports = free_ports()
    env = paycore_env(**ports, data_dir=tmp_path / "data", archive_flush_seconds="0.5")
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "paycore", "up"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{ports['api_port']}"
    try:
        wait_ready(f"{api}/readyz", timeout=60)
        yield {"api": api, "proc": proc, "env": env, "dir": tmp_path, **ports}
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def cli(platform: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "paycore", *args],
        cwd=platform["dir"],
        env=platform["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def dead_letters(platform: dict[str, Any], *flags: str) -> list[dict[str, Any]]:
    listing = cli(platform, "dead-letters", "list", "--json", *flags)
    return [orjson.loads(line) for line in listing.stdout.splitlines()]


async def publish_raw(port: int, subject: str, bodies: list[bytes]) -> None:
    """An outside producer: plain JetStream publishes, no paycore headers."""
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    for body in bodies:
        await js.publish(subject, body)
    await nc.close()


def test_up_serves_the_whole_commerce_flow_and_stops_cleanly(
    platform: dict[str, Any],
) -> None:
    api = platform["api"]
    with httpx.Client(base_url=api, timeout=5) as http:
        assert http.get("/docs").status_code == 200
        assert (
            http.post(
                "/commerce/create/customer", json={"email": "ana@example.com", "username": "ana"}
            ).status_code
            == 201
        )
        for name, value in (("lápis", 1.10), ("caderno", 1.00)):
            assert (
                http.post(
                    "/commerce/create/product", json={"name": name, "value": value}
                ).status_code
                == 201
            )
        body = {
            "email": "ana@example.com",
            "products": [{"name": "lápis", "quantity": 100}, {"name": "caderno", "quantity": 10}],
        }
        first = http.post("/commerce/orders", json=body, headers={"Idempotency-Key": "order-1"})
        again = http.post("/commerce/orders", json=body, headers={"Idempotency-Key": "order-1"})
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert b'"total":120.00' in first.content
        customer_id = first.json()["customerId"]
        bad = http.post(
            "/commerce/orders",
            json={"email": "ana@example.com", "products": [{"name": "lápis", "quantity": 0}]},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"

        def one_order() -> bool:
            page = http.get(f"/commerce/customers/{customer_id}/orders").json()
            return page.get("pagination", {}).get("totalElements") == 1

        until(one_order, timeout=20)

        challenge = {
            "codigoPedido": 1001,
            "codigoCliente": 1,
            "itens": [
                {"produto": "lápis", "quantidade": 100, "preco": 1.10},
                {"produto": "caderno", "quantidade": 10, "preco": 1.00},
            ],
        }
        bodies = [orjson.dumps(challenge), b"not json at all"]
        asyncio.run(publish_raw(platform["nats_port"], "btg-pactual-order-created", bodies))
        total = until(
            lambda: (r := http.get("/commerce/orders/1001/total")).status_code == 200 and r
        )
        assert b'"total":120.00' in total.content
        count = http.get(f"/commerce/customers/{customer_id}/orders/count").json()
        assert count == {"customerId": customer_id, "orders": 2}

        month = until(lambda: http.get("/commerce/archive").json()["months"])[0]

        def archived_orders() -> list[dict[str, Any]]:
            r = http.get(f"/commerce/archive/{month}/orders.jsonl.gz")
            rows = (
                [orjson.loads(x) for x in gzip.decompress(r.content).splitlines()]
                if r.status_code == 200
                else []
            )
            return rows if len(rows) == 2 else []

        assert sorted(r["totalCents"] for r in until(archived_orders)) == [12000, 12000]
        ranking = http.get("/commerce/analytics").json()
        assert ranking["customersByOrders"][0] == {"key": str(customer_id), "value": 2}

    letters = dead_letters(platform)
    assert [(x["topic"], x["body"]) for x in letters] == [
        ("btg-pactual-order-created", "not json at all")
    ]
    assert letters[0]["error"].startswith("not JSON")

    # Replaying puts it back on its topic; still garbage, it comes back as a new dead letter
    # and the first one is marked replayed.
    replay = cli(platform, "dead-letters", "replay", "--topic", "btg-pactual-order-created")
    assert "1 dead letter(s) queued" in replay.stderr
    again = until(lambda: [x for x in dead_letters(platform) if x["id"] != letters[0]["id"]])
    assert again[0]["body"] == "not json at all"
    assert again[0]["messageId"] == f"replay-{letters[0]['id']}"
    everything = dead_letters(platform, "--all")
    assert {x["id"]: x["replayedAt"] is not None for x in everything} == {
        letters[0]["id"]: True,
        again[0]["id"]: False,
    }

    platform["proc"].send_signal(signal.SIGINT)
    assert platform["proc"].wait(timeout=60) == 0
    data = platform["dir"] / "data"
    assert (data / "paycore.db").exists()
    banner = (platform["dir"] / "up.log").read_text()
    assert f"database   {data / 'paycore.db'}" in banner
    assert f"data       {data}   (PAYCORE_DATA_DIR)" in banner


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_up_names_a_port_in_use_and_starts_nothing(tmp_path: Path) -> None:
    ports = free_ports()
    env = paycore_env(**ports, data_dir=tmp_path / "data")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["api_port"]))
        taken.listen()
        done, took = paycore_run(env, "up")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"paycore did not start: the API could not listen on 127.0.0.1:{ports['api_port']} "
        "(address in use); stop what uses it or set PAYCORE_API_PORT"
    ]
    assert "paycore is up" not in done.stdout
    assert not (tmp_path / "data").exists()  # nothing was started
    assert took < 15


def test_up_stops_what_it_started_when_a_later_step_fails(tmp_path: Path) -> None:
    """The embedded NATS runs when the database turns out to be unreachable: it is stopped."""
    ports = free_ports()
    closed = free_port()
    database = f"postgresql+asyncpg://paycore@127.0.0.1:{closed}/paycore"
    env = paycore_env(**ports, data_dir=tmp_path / "data", database_url=database, **SECRETS)
    done, took = paycore_run(env, "up", "--no-simulators")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"paycore did not start: cannot reach the database at {database} (connection refused); "
        "start it or set PAYCORE_DATABASE_URL"
    ]
    assert (tmp_path / "data" / "nats.log").exists()  # the broker had started
    assert not listening(ports["nats_port"])
    assert took < 30


def test_up_reports_a_process_that_exits_before_it_is_ready(tmp_path: Path) -> None:
    ports = free_ports()
    broker = f"redis://127.0.0.1:{free_port()}/0"  # the worker and the API cannot reach it
    env = paycore_env(**ports, data_dir=tmp_path / "data", broker_url=broker)
    done, took = paycore_run(env, "up")
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert (
        f"cannot reach the broker at {broker} (connection refused); "
        "start it with `paycore up` or set PAYCORE_BROKER_URL"
    ) in lines
    assert re.fullmatch(
        r"paycore did not start: the (worker|API) exited with status 1 before paycore was "
        r"ready \(its output is above\)",
        lines[-1],
    ), lines
    assert "paycore is up" not in done.stdout + done.stderr
    simulator = urlsplit(ports["payments_default_url"]).port
    for port in (ports["api_port"], ports["worker_port"], simulator):
        assert not listening(port)  # every process it started is stopped
    assert took < 60
