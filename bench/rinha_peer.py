"""The peer for ``bench/rinha.py --peer``: the #1 entry of the Rinha de Backend 2025 community
re-run (ricassiocosta/backend-para-rinha-2025-node, commit 2b51393: two Node.js instances behind
nginx, state in Redis over a unix socket), run natively on this machine from a checkout outside
the project, so paycore is measured beside it in one sitting.

The checkout must be built once (docs/benchmarks.md, "Rinha beside the peer"): ``npm ci && npx
tsc`` after making its port come from ``$PORT`` (its source fixes 9999). Its own ``nginx.conf``
and start line are used, with what one host needs instead of Docker's: nginx on 127.0.0.1 with
the instances' local ports as upstreams, no Docker resolver, paths in the run folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import harness

REDIS_SOCKET = Path("/var/run/redis/redis.sock")  # the peer's source names this path
INSTANCES = (9201, 9202)


class Usage:
    """Peak summed RSS (sampled every 0.2 s) and CPU seconds of some processes and everything
    they start, from ``start()`` to ``stop()``."""

    def __init__(self, roots: list[int]) -> None:
        self._roots = roots
        self.peak_kib = 0
        self.cpu_seconds = 0.0
        self._ticks: dict[int, int] = {}  # CPU ticks per process, last seen
        self._at_start = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def _sample(self) -> None:
        every = harness.processes()
        pids = set().union(*(harness.descendants(every, root) for root in self._roots))
        rss = 0
        for pid in pids & every.keys():
            self._ticks[pid] = every[pid][1]  # a process that ends keeps its last reading
            with contextlib.suppress(OSError, RuntimeError):
                rss += harness.rss_kib(pid)
        self.peak_kib = max(self.peak_kib, rss)

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._at_start = sum(self._ticks.values())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu_seconds = (sum(self._ticks.values()) - self._at_start) / os.sysconf("SC_CLK_TCK")


def _nginx_conf(checkout: Path, run: Path) -> str:
    conf = (checkout / "nginx.conf").read_text()
    conf = re.sub(r"^(\s*)listen 80;", r"\1listen 127.0.0.1:9999;", conf, flags=re.M)
    for name, port in zip(("backend-api-1", "backend-api-2"), INSTANCES, strict=True):
        conf = conf.replace(f"{name}:9999", f"127.0.0.1:{port}")
    conf = re.sub(r"^\s*resolver 127\.0\.0\.11.*\n", "", conf, flags=re.M)
    temp = " ".join(
        f"{kind}_temp_path {run / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    head = f"pid {run / 'nginx.pid'};\nerror_log {run / 'nginx-error.log'};\nhttp {{\n  {temp}\n"
    return conf.replace("http {\n", head + "  access_log off;\n", 1)


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the peer's port {port} did not open in {timeout:.0f} s")


@contextlib.contextmanager
def peer(checkout: Path, run: Path, default_url: str, fallback_url: str) -> Iterator[Usage]:
    """Redis, the two instances and nginx on :9999, started fresh in ``run``; yields the
    usage meter of all of them (started by the caller when the load starts); stopped after."""
    if not (checkout / "dist" / "main.js").exists():
        raise RuntimeError(f"{checkout} is not built (docs/benchmarks.md, Rinha beside the peer)")
    (run / "tmp").mkdir(parents=True, exist_ok=True)
    REDIS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    REDIS_SOCKET.unlink(missing_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(argv: list[str], log: str, **env: str) -> None:
        with (run / log).open("ab") as out:
            procs.append(
                subprocess.Popen(
                    argv,
                    cwd=checkout,
                    env={**os.environ, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        spawn(
            ["redis-server", "--save", "", "--appendonly", "no", "--maxclients", "5000",
             "--unixsocket", str(REDIS_SOCKET), "--unixsocketperm", "777", "--port", "0",
             "--protected-mode", "no", "--hz", "10", "--dir", str(run)],
            "redis.log",
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not REDIS_SOCKET.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the peer's Redis did not start")
            time.sleep(0.1)
        for port in INSTANCES:
            spawn(
                ["node", "--no-deprecation", "--optimize_for_size", "--max_old_space_size=512",
                 "dist/main.js"],
                f"api-{port}.log",
                PORT=str(port),
                PAYMENT_PROCESSOR_URL_DEFAULT=default_url,
                PAYMENT_PROCESSOR_URL_FALLBACK=fallback_url,
                MAX_PARALLELISM="6",
            )  # fmt: skip
        for port in INSTANCES:
            _wait_port(port)
        (run / "nginx.conf").write_text(_nginx_conf(checkout, run))
        spawn(["nginx", "-c", str(run / "nginx.conf"), "-g", "daemon off;"], "nginx.log")
        _wait_port(9999)
        yield Usage([p.pid for p in procs])
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
