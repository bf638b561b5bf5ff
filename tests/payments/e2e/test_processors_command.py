"""`paycore processors` as a user runs it: two payment processor simulators in one process,
driven over real HTTP, stopped with Ctrl-C or SIGTERM; bad options refused."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import Proc, paycore_env, until
from servers import free_port

TOKEN = {"X-Rinha-Token": "s3cret"}


def payment(amount: str = "19.90", at: str = "2025-07-15T12:34:56.000Z") -> str:
    return f'{{"correlationId":"{uuid.uuid4()}","amount":{amount},"requestedAt":"{at}"}}'


def exact_summary(base: str) -> Any:
    response = httpx.get(f"{base}/admin/payments-summary", headers=TOKEN, timeout=5)
    assert response.status_code == 200, response.text
    return response.json(parse_float=Decimal)


def answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/admin/payments-summary", headers=TOKEN, timeout=1).is_success
    except httpx.HTTPError:
        return False


def start(log: Path, *options: str) -> tuple[Proc, str, str]:
    """Start `paycore processors` on two free ports; wait until both answer."""
    ports = free_port(), free_port()
    args = ["processors", "--default-port", str(ports[0]), "--fallback-port", str(ports[1])]
    args += ["--default-fee", "0.05", "--fallback-fee", "0.15", "--token", "s3cret", *options]
    proc = Proc(args, paycore_env(), log).start()
    default, fallback = (f"http://127.0.0.1:{port}" for port in ports)
    try:
        until(lambda: answers(default) and answers(fallback), timeout=30)
    except BaseException:
        proc.kill()
        raise
    return proc, default, fallback


@pytest.fixture
def processors(tmp_path: Path) -> Iterator[tuple[Proc, str, str]]:
    proc, default, fallback = start(tmp_path / "processors.log")
    try:
        yield proc, default, fallback
    finally:
        proc.kill()


def test_both_processors_take_payments_and_charge_their_own_fee(
    processors: tuple[Proc, str, str],
) -> None:
    proc, default, fallback = processors
    once = payment("19.90")

    paid = [httpx.post(f"{base}/payments", content=once, timeout=5) for base in (default, fallback)]
    repeated = httpx.post(f"{default}/payments", content=once, timeout=5)
    httpx.post(f"{fallback}/payments", content=payment("0.10"), timeout=5)
    health = httpx.get(f"{default}/payments/service-health", timeout=5)
    too_soon = httpx.get(f"{default}/payments/service-health", timeout=5)

    assert [r.status_code for r in paid] == [200, 200]  # each processor has its own store
    assert repeated.status_code == 422
    assert exact_summary(default) == {
        "totalRequests": 1,
        "totalAmount": Decimal("19.90"),
        "totalFee": Decimal("0.995"),
        "feePerTransaction": Decimal("0.05"),
    }
    assert exact_summary(fallback) == {
        "totalRequests": 2,
        "totalAmount": Decimal("20.00"),
        "totalFee": Decimal("3.00"),
        "feePerTransaction": Decimal("0.15"),
    }
    assert health.json() == {"failing": False, "minResponseTime": 0}
    assert too_soon.status_code == 429
    assert httpx.get(default, timeout=5).status_code == 404
    assert f"default   {default}   fee 0.05" in proc.log_tail()
    assert f"fallback  {fallback}   fee 0.15" in proc.log_tail()


def test_admin_configuration_changes_one_processor_only(
    processors: tuple[Proc, str, str],
) -> None:
    _, default, fallback = processors

    failing = httpx.put(
        f"{default}/admin/configurations/failure", json={"failure": True}, headers=TOKEN
    )
    refused = httpx.post(f"{default}/payments", content=payment(), timeout=5)
    accepted = httpx.post(f"{fallback}/payments", content=payment(), timeout=5)

    assert failing.status_code == 200
    assert refused.status_code == 500
    assert accepted.status_code == 200
    assert exact_summary(default)["totalRequests"] == 0
    assert exact_summary(fallback)["totalRequests"] == 1


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_drains_payments_in_flight_and_exits_0(
    tmp_path: Path, stop_with: signal.Signals
) -> None:
    proc, default, _ = start(tmp_path / "processors.log", "--max-in-flight", "1")
    try:
        httpx.put(f"{default}/admin/configurations/delay", json={"delay": 1000}, headers=TOKEN)
        results: list[int] = []

        def pay() -> None:
            # a probe below may hold the one slot the moment this payment arrives: then it is
            # refused (429) and sent again, until it is the payment in flight
            body = payment()
            while (status := httpx.post(f"{default}/payments", content=body).status_code) == 429:
                time.sleep(0.01)
            results.append(status)

        paying = threading.Thread(target=pay)
        paying.start()
        # with one payment in its delay, the next one is refused at once (before its body is
        # even read, so this probe never gets stored)
        until(lambda: httpx.post(f"{default}/payments", content="{}").status_code == 429)

        assert proc.popen is not None
        proc.popen.send_signal(stop_with)
        code = proc.popen.wait(timeout=30)
        paying.join(timeout=10)
    finally:
        proc.kill()

    assert code == 0, proc.log_tail()
    assert results == [200]  # the payment in its delay was answered before the exit
    assert "processors stopped" in proc.log_tail()


def run_command(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paycore", "processors", *options],
        env=paycore_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--default-port", "18555", "--fallback-port", "18555"], "ports must differ"),
        (["--default-fee", "1.5"], "--default-fee: a fee must be a decimal in [0, 1)"),
        (["--fallback-fee", "ten"], "--fallback-fee: a fee must be a decimal in [0, 1)"),
        (["--max-in-flight", "0"], "--max-in-flight"),
        (["--default-port", "70000"], "--default-port"),
    ],
)
def test_a_bad_option_exits_non_zero_with_a_clear_message(options: list[str], message: str) -> None:
    done = run_command(*options)

    assert done.returncode == 2
    assert message in done.stderr


def test_a_port_in_use_exits_non_zero_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = run_command("--default-port", str(free_port()), "--fallback-port", str(port))

    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
