"""Benchmark: order creation over HTTP (k6, constant arrival rate) and end-to-end lag until
the order is recorded by the analytics service, on SQLite+NATS and PostgreSQL+NATS.

    .venv/bin/python bench/commerce_orders.py [--rate 250 500] [--duration 30]
        [--db sqlite postgres] [--no-worker] [--keep DIR]

Starts its own NATS (fsync on every write), PostgreSQL, API and worker on 127.0.0.1, prints
a table and writes ``bench/results/commerce_orders.json``. Each run starts with a 5-second
warm-up at the same rate, not counted (k6 opens its connections, caches fill); no order of it
may be lost either. Lag = time the analytics service
committed the order minus the time the API accepted it (both stamped on this machine). Also
reports the cores each kind of process used while k6 ran (the API, the worker, k6, NATS,
PostgreSQL, the whole machine). ``--no-worker`` runs the API alone (no lag then) and writes
``bench/results/commerce_orders_api_only.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from servers import Server, start_nats, start_postgres  # noqa: E402

from paycore.commerce.analytics import store as analytics_store  # noqa: E402
from paycore.platform.messaging.deadletters import dead_letters  # noqa: E402
from paycore.platform.persistence.db import create_engine  # noqa: E402

CUSTOMERS, PRODUCTS = 100, 20


def seed(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as http:
        for n in range(CUSTOMERS):
            http.post(
                "/commerce/customers",
                json={"email": f"bench{n}@example.com", "username": f"bench{n}"},
            ).raise_for_status()
        for n in range(PRODUCTS):
            value = f"{n + 1}.{n % 100:02d}"  # a JSON number, written exactly
            http.post(
                "/commerce/products",
                content=f'{{"name": "product-{n}", "value": {value}}}',
                headers={"content-type": "application/json"},
            ).raise_for_status()


async def lags(
    database_url: str, expected: int, counted_after: int, timeout: float = 120
) -> tuple[list[float], int, int]:
    """Wait until ``expected`` orders are recorded; return the lag in ms of each one with an id
    above ``counted_after`` (the warm-up's orders come first), how many were recorded, and how
    many messages became dead letters."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    o = analytics_store.analytics_orders
    try:
        while True:
            async with engine.connect() as conn:
                query = select(o.c.order_id, o.c.ordered_at, o.c.recorded_at)
                rows = (await conn.execute(query)).all()
                letters = (
                    await conn.execute(select(func.count()).select_from(dead_letters))
                ).scalar_one()
            if len(rows) >= expected or time.monotonic() > deadline:
                counted = [r for r in rows if r.order_id > counted_after]
                lag = [(r.recorded_at - r.ordered_at).total_seconds() * 1000 for r in counted]
                return lag, len(rows), letters
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


def bench_one(
    db: str, rate: int, duration: int, nats: Server, pg: Server | None, work: Path, worker: bool
) -> dict[str, Any]:
    database_url = harness.fresh_database(db, pg, work)
    services = harness.api_and_worker(
        [], work, worker=worker, database_url=database_url, broker_url=nats.url
    )
    with services as api:
        seed(api)
        catalog = {"CUSTOMERS": str(CUSTOMERS), "PRODUCTS": str(PRODUCTS)}
        with harness.cpu_use() as cores:
            metrics = harness.run_orders_k6(api, rate, duration, work, **catalog)
        accepted, counted, figures = harness.counted_orders(metrics, duration)
        if worker:
            lag, recorded, letters = asyncio.run(lags(database_url, accepted, accepted - counted))
        else:
            lag, recorded, letters = [], 0, 0
    return {
        "database": db,
        "broker": "nats (fsync always)",
        "worker": worker,
        "cpu_cores": cores,
        "target_rate": rate,
        "duration_s": duration,
        **figures,
        "recorded": recorded,
        "dead_letters": letters,
        "lag_ms": harness.spread(lag) if worker else None,  # no worker, nothing recorded
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate",
        type=int,
        nargs="+",
        default=[250, 500],
        help="orders per second, one run each (default 250 500)",
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds (default 30)")
    parser.add_argument(
        "--db", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="run the API alone (no analytics worker, so no lag): what accepting costs by itself",
    )
    parser.add_argument("--keep", help="keep logs and data in this folder instead of a temp dir")
    parser.add_argument(
        "--out",
        type=Path,
        help="results file (default bench/results/commerce_orders.json, or"
        " commerce_orders_api_only.json with --no-worker)",
    )
    args = parser.parse_args()
    name = "commerce_orders_api_only" if args.no_worker else "commerce_orders"
    out: Path = args.out or ROOT / "bench" / "results" / f"{name}.json"

    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        nats = start_nats(base / "nats")
        pg = start_postgres(base / "pg") if "postgres" in args.db else None
        try:
            runs = [
                bench_one(
                    db, rate, args.duration, nats, pg, base / f"{db}-{rate}", not args.no_worker
                )
                for db in args.db
                for rate in args.rate
            ]
        finally:
            nats.stop()
            if pg:
                pg.stop()
    result = harness.write_results(out, "commerce order creation", runs)
    columns = ("database", "target/s", "accepted/s", "accept p50", "accept p99", "lag p50")
    rows = [
        (
            r["database"],
            r["target_rate"],
            r["accepted_per_s"],
            *harness.accept_and_lag_cells(r),
            r["accepted"] - r["recorded"] if r["worker"] else "-",
        )
        for r in runs
    ]
    harness.print_table((*columns, "lag p99", "lost"), rows, width=10)
    harness.print_cpu(runs)
    print(f"\nmachine: {result['machine']}\nwritten to {out}")


if __name__ == "__main__":
    main()
