"""Test support for the payments context: the two processor simulators as a real process
(`paycore processors`), their admin API, and the consistency check the Rinha test makes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from procs import Proc, paycore_env, paycore_process, until
from servers import free_port

from paycore.platform.messaging.embedded import start_nats
from paycore.schema import upgrade

TOKEN = "123"


class Processors:
    """Both simulators; ``url[name]`` and admin helpers by processor name."""

    def __init__(self, proc: Proc, ports: dict[str, int]) -> None:
        self.proc = proc
        self.url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    def admin(self, name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(
            method, self.url[name] + path, headers={"X-Rinha-Token": TOKEN}, timeout=10, **kwargs
        )
        response.raise_for_status()
        return response

    def set(self, name: str, *, delay: int | None = None, failure: bool | None = None) -> None:
        if delay is not None:
            self.admin(name, "PUT", "/admin/configurations/delay", json={"delay": delay})
        if failure is not None:
            self.admin(name, "PUT", "/admin/configurations/failure", json={"failure": failure})

    def reset(self) -> None:
        for name in self.url:
            self.set(name, delay=0, failure=False)
            self.admin(name, "POST", "/admin/purge-payments")

    def summary(self, name: str, params: dict[str, str] | None = None) -> tuple[int, Decimal]:
        data = self.admin(name, "GET", "/admin/payments-summary", params=params or {}).json(
            parse_float=Decimal
        )
        return int(data["totalRequests"]), Decimal(str(data["totalAmount"]))

    def summaries(self, params: dict[str, str] | None = None) -> dict[str, tuple[int, Decimal]]:
        return {name: self.summary(name, params) for name in self.url}


@contextmanager
def running_processors(log_dir: Path) -> Iterator[Processors]:
    ports = {"default": free_port(), "fallback": free_port()}
    proc = Proc(
        [
            "processors",
            "--default-port",
            str(ports["default"]),
            "--fallback-port",
            str(ports["fallback"]),
        ],
        paycore_env(),
        log_dir / "processors.log",
    ).start()
    try:
        processors = Processors(proc, ports)
        until(lambda: _answering(processors), timeout=30)
        yield processors
    finally:
        proc.stop()


def _answering(processors: Processors) -> bool:
    popen = processors.proc.popen
    if popen is not None and popen.poll() is not None:
        raise RuntimeError(f"processors exited:\n{processors.proc.log_tail()}")
    try:
        processors.summaries()
        return True
    except httpx.HTTPError:
        return False


def backend_summary(
    base_url: str, params: dict[str, str] | None = None
) -> dict[str, tuple[int, Decimal]]:
    data = httpx.get(base_url + "/payments-summary", params=params or {}, timeout=10).json(
        parse_float=Decimal
    )
    return {
        name: (int(data[name]["totalRequests"]), Decimal(str(data[name]["totalAmount"])))
        for name in ("default", "fallback")
    }


class Deployment:
    """The Rinha topology as processes, on one SQLite file shared by every process, with
    ``apis`` API instances at the root. ``accept="broker"``: a private NATS and one payments
    worker; ``accept="local"`` (the Rinha deployment's): no broker, no worker, each instance
    (``api1``, ``api2`` …) records and dispatches its own payments in a SQLite file of its own
    (``database(i)``), the others' its siblings, and with ``journal`` appends each to its
    journal before the 202 (in ``work/journal``)."""

    def __init__(
        self,
        work: Path,
        processors: Processors,
        apis: int = 2,
        accept: str = "broker",
        journal: bool = False,
    ) -> None:
        self.work = work
        self.local = accept == "local"
        self.nats_port = free_port()
        self.env = paycore_env(
            data_dir=work / "data",
            database_url=f"sqlite+aiosqlite:///{work / 'payments.db'}",
            broker_url="none" if self.local else f"nats://127.0.0.1:{self.nats_port}",
            payments_accept=accept,
            payments_default_url=processors.url["default"],
            payments_fallback_url=processors.url["fallback"],
            payments_open_purge="true",  # as the contest deployment: its test purges
            payments_journal=str(work / "journal") if journal else "",
        )
        self.worker_port = free_port()
        self.api_ports = [free_port() for _ in range(apis)]
        self.worker = self._worker()
        self.apis = [self._api(i) for i in range(apis)]
        self.nats: subprocess.Popen[bytes] | None = None

    def database(self, i: int) -> Path:
        """The SQLite file of instance ``i`` (all of them share one unless ``local``)."""
        return self.work / (f"payments-api{i + 1}.db" if self.local else "payments.db")

    def databases(self) -> list[Path]:
        return sorted({self.database(i) for i in range(len(self.api_ports))})

    def start(self) -> None:
        if not self.local:
            self.nats = start_nats(self.work / "nats", port=self.nats_port, sync="always")
        for path in self.databases():
            upgrade(f"sqlite+aiosqlite:///{path}")
        for proc in self.apis if self.local else [self.worker, *self.apis]:
            proc.start()

    def base(self, i: int = 0) -> str:
        return f"http://127.0.0.1:{self.api_ports[i]}"

    def _worker(self) -> Proc:
        return paycore_process("worker", ["payments"], self.env, self.work, self.worker_port)

    def _api(self, i: int) -> Proc:
        env = dict(self.env)
        if self.local:
            others = [p for p in self.databases() if p != self.database(i)]
            env["PAYCORE_PAYMENTS_INSTANCE"] = f"api{i + 1}"
            env["PAYCORE_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.database(i)}"
            env["PAYCORE_PAYMENTS_SIBLINGS"] = ",".join(f"sqlite+aiosqlite:///{p}" for p in others)
        return paycore_process("api", ["payments"], env, self.work, self.api_ports[i], root=True)

    def restart_worker(self) -> None:
        self.worker = self._worker().start()

    def restart_api(self, i: int) -> None:
        self.apis[i] = self._api(i).start()

    def stop(self) -> None:
        for proc in [*self.apis, self.worker]:
            if proc.popen is not None:
                proc.stop()
        if self.nats is not None:
            self.nats.terminate()
            self.nats.wait(15)


@contextmanager
def deployment(
    work: Path,
    processors: Processors,
    apis: int = 2,
    accept: str = "broker",
    journal: bool = False,
) -> Iterator[Deployment]:
    running = Deployment(work, processors, apis, accept, journal)
    try:
        running.start()
        yield running
    finally:
        running.stop()
