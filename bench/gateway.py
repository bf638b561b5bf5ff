"""Benchmark: sustained card transactions over HTTP (k6, constant arrival rate) and the
decision latency, accepted -> decided in the merchant's view.

    .venv/bin/python bench/gateway.py [--rate 500 1000] [--duration 30]
        [--db postgres sqlite] [--accounts 4] [--keep DIR]

Starts its own NATS (fsync on every write), PostgreSQL, `paycore api --context gateway` and
`paycore worker --context gateway` (processor and result applier) on 127.0.0.1, creates
merchant accounts, prints a table and writes ``bench/results/gateway.json``.

*Accept* is the HTTP latency k6 sees for ``POST /gateway/transactions`` (the 202 is sent after
the commit holding the pending transaction and its encrypted event). *Decision* is, per
transaction, ``decided_at - created_at`` as stored: from the API's acceptance to the moment the
result applier wrote the decision into the merchant's view (both stamped on this machine). Also
reports the cores each kind of process used while k6 ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from gateway_kit import create_account, gateway_settings  # noqa: E402
from servers import Server, start_nats, start_postgres  # noqa: E402

from paycore.gateway import store  # noqa: E402
from paycore.platform.messaging.deadletters import dead_letters  # noqa: E402
from paycore.platform.persistence.db import create_engine  # noqa: E402


async def decisions(
    database_url: str, expected: int, timeout: float = 180
) -> tuple[list[float], int, int]:
    """Wait until ``expected`` transactions are decided; return each one's decision latency in
    ms, how many are still pending and how many messages became dead letters."""
    engine = create_engine(database_url)
    t = store.transactions.c
    deadline = time.monotonic() + timeout
    try:
        while True:
            async with engine.connect() as conn:
                decided = await conn.scalar(
                    select(func.count())
                    .select_from(store.transactions)
                    .where(t.status != "pending")
                )
            if (decided or 0) >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(t.created_at, t.decided_at))).all()
            letters = await conn.scalar(select(func.count()).select_from(dead_letters))
    finally:
        await engine.dispose()
    latencies = [(r.decided_at - r.created_at).total_seconds() * 1000 for r in rows if r.decided_at]
    return latencies, sum(1 for r in rows if r.decided_at is None), int(letters or 0)


def run_k6(api: str, rate: int, duration: int, secrets: list[str], work: Path) -> dict[str, Any]:
    summary = work / "k6-summary.json"
    env = {"BASE": api, "RATE": str(rate), "DURATION": f"{duration}s", "SECRETS": ",".join(secrets)}
    harness.run_k6(ROOT / "bench" / "k6" / "gateway.js", env, summary=summary)
    data: dict[str, Any] = json.loads(summary.read_text())
    return data


def bench_one(
    db: str, rate: int, duration: int, accounts: int, nats: Server, pg: Server | None, work: Path
) -> dict[str, Any]:
    database_url = harness.fresh_database(db, pg, work)
    services = harness.api_and_worker(
        ["gateway"], work, database_url=database_url, broker_url=nats.url, **gateway_settings()
    )
    with services as api:
        secrets = [create_account(api, f"bench-{n}")["secret"] for n in range(accounts)]
        with harness.cpu_use() as cores:
            summary = run_k6(api, rate, duration, secrets, work)
        metrics = summary["metrics"]
        accepted = int(metrics["checks"]["passes"])
        latency, pending, letters = asyncio.run(decisions(database_url, accepted))
    accept = metrics["http_req_duration"]
    return {
        "database": db,
        "broker": "nats (fsync always)",
        "cpu_cores": cores,
        "target_rate": rate,
        "duration_s": duration,
        "accounts": accounts,
        "accepted": accepted,
        "failed": int(metrics["checks"]["fails"]),
        "accepted_per_s": round(accepted / duration, 1),
        "accept_ms": harness.k6_spread(accept),
        "decided": len(latency),
        "still_pending": pending,
        "dead_letters": letters,
        "decision_ms": harness.spread(latency),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=int, nargs="+", default=[500, 1000], help="transactions/s, one run each"
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds (default 30)")
    parser.add_argument("--db", nargs="+", default=["postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--accounts", type=int, default=4, help="merchant accounts (default 4)")
    parser.add_argument("--keep", help="keep logs and data in this folder instead of a temp dir")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gateway.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as tmp:
        base = Path(args.keep) if args.keep else Path(tmp)
        nats = start_nats(base / "nats")
        pg = start_postgres(base / "pg") if "postgres" in args.db else None
        try:
            runs = [
                bench_one(db, rate, args.duration, args.accounts, nats, pg, base / f"{db}-{rate}")
                for db in args.db
                for rate in args.rate
            ]
        finally:
            nats.stop()
            if pg:
                pg.stop()
    result = harness.write_results(args.out, "gateway transactions", runs)
    columns = ("database", "target/s", "accepted/s", "accept p50", "accept p99", "decision p50")
    rows = [
        (
            r["database"],
            r["target_rate"],
            r["accepted_per_s"],
            f"{r['accept_ms']['p50']} ms",
            f"{r['accept_ms']['p99']} ms",
            f"{r['decision_ms']['p50']} ms",
            f"{r['decision_ms']['p99']} ms",
            r["still_pending"],
        )
        for r in runs
    ]
    harness.print_table((*columns, "decision p99", "undecided"), rows)
    harness.print_cpu(runs)
    print(f"\nmachine: {result['machine']}\nwritten to {args.out}")


if __name__ == "__main__":
    main()
