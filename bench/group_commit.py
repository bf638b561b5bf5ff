"""Benchmark: what the SQLite batch writer costs per item, written at once by its caller or
handed to the writer's task and back.

    .venv/bin/python bench/group_commit.py [--items 3000] [--rounds 3] [--dir DIR]

One caller submits ``--items`` payments one after the other (as the Rinha API's accepts
mostly arrive: one per batch) to a ``db.writer`` of the payments table, on a SQLite file in WAL
mode with synchronous=FULL, under uvloop. Two ways, alternated ``--rounds`` times in one run:

- ``at once``: the writer as it is (nothing waits, nothing is being written, the write lock is
  free: the caller writes its item without an await);
- ``through the task``: the same writer with ``write_now`` declining, so every item goes
  through the queue to the writer's task and its result comes back through a future (what every
  item did before ``write_now``).

Prints the wall time and the CPU time (``time.process_time``) per item of each round, and the
medians. Files go to a temporary folder on the filesystem of ``--dir`` (default: this
repository's), deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from paycore.payments import store  # noqa: E402
from paycore.platform.persistence.batch import Batch  # noqa: E402
from paycore.platform.persistence.db import create_engine  # noqa: E402
from paycore.platform.persistence.uow import Database  # noqa: E402
from paycore.schema import upgrade  # noqa: E402


def _build(items: Sequence[str], ids: Sequence[int], batch: Batch) -> list[None]:
    batch.add(
        store.payments,
        [
            {
                "correlation_id": cid,
                "amount_cents": 1990,
                "received_at_ms": 0,
                "processed": False,
                "owner": "api1",
                "processor": "default",
                "requested_at_ms": 0,
            }
            for cid in items
        ],
    )
    return [None] * len(items)


async def _round(folder: Path, items: int, at_once: bool) -> tuple[float, float]:
    """(wall µs, CPU µs) per item of one round on a fresh database."""
    url = f"sqlite+aiosqlite:///{folder / f'round-{time.monotonic_ns()}.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    writer = Database(engine).writer(_build, tables=((store.payments, store.RECEIVED),))
    if not at_once:
        writer._commit._writer.write_now = lambda batch: None  # type: ignore[attr-defined]
    await writer.submit("warm-up")  # opens the writer's connection
    wall, cpu = time.perf_counter(), time.process_time()
    for n in range(items):
        await writer.submit(f"payment-{n}")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await writer.stop()
    await engine.dispose()
    return 1e6 * wall / items, 1e6 * cpu / items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=ROOT)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="group-commit-", dir=args.dir))
    figures: dict[str, list[tuple[float, float]]] = {"at once": [], "through the task": []}
    try:
        for _ in range(args.rounds):
            for way, at_once in (("at once", True), ("through the task", False)):
                wall, cpu = uvloop.run(_round(folder, args.items, at_once))
                figures[way].append((wall, cpu))
                print(f"{way:>17}: wall {wall:6.0f} µs/item, CPU {cpu:5.0f} µs/item")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for way, runs in figures.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"median {way}: wall {wall:.0f} µs/item, CPU {cpu:.0f} µs/item")


if __name__ == "__main__":
    main()
