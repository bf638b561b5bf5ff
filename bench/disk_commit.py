"""Benchmark: what this machine's disk allows a durable accept, the hour it is run.

    .venv/bin/python bench/disk_commit.py [--commits 3000] [--gap-ms 2] [--dir DIR]

Every durable accept waits for an fsync, so the accept's tail cannot be shorter than the
disk's. This times, one after the other, ``--commits`` of each of:

- ``fsync``: appending 1 KiB to a file and ``os.fsync`` on it;
- ``sqlite commit``: a SQLite transaction of four small rows (two orders, two outbox rows, as a
  group commit of two orders writes) in WAL mode with synchronous=FULL, as paycore runs it;
  only the ``COMMIT`` is timed.

A pause of ``--gap-ms`` between commits keeps the rate near a benchmark's (500 commits/s at
most). Files go to a temporary folder on the filesystem of ``--dir`` (default: this
repository's), deleted afterwards. Prints p50/p90/p99/p99.9/max in ms and writes
``bench/results/disk_commit.json``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402


def timed(step: Callable[[], float], commits: int, gap: float) -> dict[str, float]:
    """The spread, in ms, of what ``commits`` calls of ``step`` report (seconds each)."""
    took = []
    for _ in range(commits):
        took.append(step() * 1000)
        time.sleep(gap)
    return {**harness.spread(took), "p99.9": round(harness.percentile(took, 99.9), 2)}


def fsync_step(path: Path) -> tuple[Callable[[], float], Callable[[], None]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    block = os.urandom(1024)

    def step() -> float:
        started = time.perf_counter()
        os.write(fd, block)
        os.fsync(fd)
        return time.perf_counter() - started

    return step, lambda: os.close(fd)


def sqlite_step(path: Path) -> tuple[Callable[[], float], Callable[[], None]]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, body BLOB)")
    db.execute("CREATE INDEX orders_email ON orders (email)")
    db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, body BLOB)")

    def step() -> float:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO orders (email, body) VALUES (?, ?)",
            [(os.urandom(8).hex(), os.urandom(300)) for _ in range(2)],
        )
        db.executemany("INSERT INTO outbox (body) VALUES (?)", [(os.urandom(400),)] * 2)
        started = time.perf_counter()
        db.execute("COMMIT")
        return time.perf_counter() - started

    return step, db.close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=3000, help="of each kind (default 3000)")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="pause between commits")
    parser.add_argument("--dir", type=Path, default=ROOT, help="filesystem to measure")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/disk_commit.json")
    args = parser.parse_args()
    if args.commits < 1 or args.gap_ms < 0:
        parser.error("--commits must be at least 1 and --gap-ms not negative")
    if not args.dir.is_dir():
        parser.error(f"--dir {args.dir} is not a folder")
    gap = args.gap_ms / 1000
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix=".paycore-disk-") as work:
        for kind, make in (("fsync", fsync_step), ("sqlite commit", sqlite_step)):
            step, close = make(Path(work) / kind.replace(" ", "_"))
            try:
                runs.append(
                    {"kind": kind, "commits": args.commits, "ms": timed(step, args.commits, gap)}
                )
            finally:
                close()
    harness.print_table(
        ("kind", "p50", "p90", "p99", "p99.9", "max"),
        [
            (r["kind"], *(f"{r['ms'][q]:.2f} ms" for q in ("p50", "p90", "p99", "p99.9", "max")))
            for r in runs
        ],
        width=13,
    )
    result = harness.write_results(args.out, "disk commit latency", runs)
    print(f"\nmachine: {result['machine']}\nwritten to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
