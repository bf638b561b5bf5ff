"""Benchmark of the fulfillment service.

    .venv/bin/python bench/fulfillment.py [--orders 50000] [--workers 2] [--seconds 15]
        [--rounds 3]

1. Ingestion: publishes ``--orders`` valid orders to the ``orders`` topic (NATS, fsync on every
   write), then starts ``--workers`` processes of `paycore worker --context fulfillment` on
   PostgreSQL (they share the durable consumer) and times how long they take to store them
   all: orders/s from the topic into the normalized tables, once the first order is stored
   (steady state), and from the workers' start (start-up included).
2. Lookups: starts `paycore api --context fulfillment --root` (its cache warmed from the
   database) and measures ``GET /orders/{order_uid}`` on cache hits with wrk (maximum
   throughput, random ids) next to the same server's trivial route (``/healthz``) as the
   ceiling, and with k6 at a fixed 1,000 requests/s (latency at that load): a 10 s warm-up,
   then ``--rounds`` rounds of ``--seconds`` each, reported one by one and as their median.
   The ingestion's writes are checkpointed and the tables analysed before the API starts.

Writes ``bench/results/fulfillment.json``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from harness import machine  # noqa: E402
from procs import Proc, paycore_env  # noqa: E402
from servers import (  # noqa: E402
    create_database,
    free_port,
    run_sql,
    start_nats,
    start_postgres,
)

from paycore.fulfillment import store  # noqa: E402
from paycore.fulfillment.generator import generate  # noqa: E402
from paycore.platform.ids import uuid7  # noqa: E402
from paycore.platform.messaging.bus import Envelope  # noqa: E402
from paycore.platform.persistence.db import create_engine  # noqa: E402
from paycore.schema import upgrade  # noqa: E402

LOOKUP_K6 = """
import http from "k6/http";
const ids = JSON.parse(open(__ENV.IDS));
const NAME = { tags: { name: "GET /orders/{order_uid}" } };
export const options = {
  discardResponseBodies: true,
  scenarios: { lookups: { executor: "constant-arrival-rate", rate: 1000, timeUnit: "1s",
    duration: __ENV.DURATION, preAllocatedVUs: 20, maxVUs: 100 } },
  summaryTrendStats: ["med", "p(90)", "p(99)", "max"],
};
export default function () {
  // a fixed name tag: k6 derives tags from every new URL string, and that work shows up in
  // its own latency figures (p99 +2-3 ms at this rate here)
  http.get(`${__ENV.BASE}/orders/${ids[Math.floor(Math.random() * ids.length)]}`, NAME);
}
"""

WRK_LUA = """
local ids = {%s}
request = function()
  return wrk.format("GET", "/orders/" .. ids[math.random(#ids)])
end
"""


async def stored(url: str) -> int:
    engine = create_engine(url)
    async with engine.connect() as conn:
        count = await store.count_orders(conn)
    await engine.dispose()
    return count


def k6_fixed_rate(base: str, ids: list[str], seconds: int, work: Path) -> dict[str, float]:
    (work / "ids.json").write_text(json.dumps(ids))
    (work / "lookup.js").write_text(LOOKUP_K6)
    summary = work / "k6-lookup.json"
    harness.run_k6(
        work / "lookup.js",
        {"BASE": base, "IDS": str(work / "ids.json"), "DURATION": f"{seconds}s"},
        summary=summary,
        quiet_output=True,
    )
    metrics = json.loads(summary.read_text())["metrics"]
    latency = metrics["http_req_duration"]
    return {
        "requests_per_s": round(metrics["http_reqs"]["rate"], 1),
        "p50_ms": round(latency["med"], 3),
        "p99_ms": round(latency["p(99)"], 3),
        "max_ms": round(latency["max"], 2),
        "failed": metrics["http_req_failed"]["passes"],
        "dropped": metrics.get("dropped_iterations", {}).get("count", 0),
    }


def ingest(url: str, env: dict[str, str], workers: int, total: int, work: Path) -> dict[str, Any]:
    """Start ``workers`` fulfillment workers and time them until ``total`` orders are stored."""
    started = time.monotonic()
    procs = [
        Proc(
            ["worker", "--context", "fulfillment", "--port", str(free_port())],
            env,
            work / f"worker-{n}.log",
        ).start()
        for n in range(workers)
    ]
    first, done = asyncio.run(_watch_count(url, total))
    for proc in procs:
        proc.stop()
    return {
        "orders": total,
        "workers": workers,
        "orders_per_s": round((total - first[1]) / (done - first[0]), 1),
        "orders_per_s_with_start": round(total / (done - started), 1),
        "start_s": round(first[0] - started, 2),
        "note": "PostgreSQL, NATS fsync always; steady state from the first order stored",
    }


async def _watch_count(url: str, total: int) -> tuple[tuple[float, int], float]:
    """Poll the stored orders every 0.1 s on one connection: (when the first ones were seen,
    how many), and when all ``total`` were."""
    engine = create_engine(url)
    first: tuple[float, int] | None = None
    try:
        async with engine.connect() as conn:
            while (count := await store.count_orders(conn)) < total:
                if count and first is None:
                    first = (time.monotonic(), count)
                await conn.rollback()  # a fresh snapshot for the next count
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
    return first or (time.monotonic(), 0), time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seconds", type=int, default=15, help="length of each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="k6 rounds at 1,000 requests/s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fulfillment.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as tmp:
        work = Path(tmp)
        nats, pg = start_nats(work / "nats"), start_postgres(work / "pg")
        try:
            url = create_database(pg, "bench")
            upgrade(url)
            bodies = [body for body, _ in generate(args.orders, 0.0, seed=5)]
            ids = [json.loads(b)["order_uid"] for b in bodies]
            asyncio.run(
                harness.publish(nats.url, [Envelope("orders", b, id=uuid7()) for b in bodies])
            )
            api_port = free_port()
            env = paycore_env(
                database_url=url,
                broker_url=nats.url,
                data_dir=work / "data",
                log_level="WARNING",
                api_port=api_port,
            )
            ingestion = ingest(url, env, args.workers, args.orders, work)
            # lookups on a quiet machine: the ingestion's writes flushed, statistics fresh
            for sql in ("CHECKPOINT", "VACUUM ANALYZE"):
                run_sql(pg, "bench", sql)
            base = f"http://127.0.0.1:{api_port}"
            api = Proc(
                ["api", "--context", "fulfillment", "--root"],
                env,
                work / "api.log",
                f"{base}/readyz",
            ).start(timeout=300)
            try:
                sample = ids[-5000:]
                script = work / "lookup.lua"
                script.write_text(WRK_LUA % ",".join(f'"{i}"' for i in sample))
                trivial = harness.wrk(f"{base}/healthz", args.seconds)
                lookup = harness.wrk(base, args.seconds, script)
                k6_fixed_rate(base, sample, 10, work)  # warm-up, not reported
                rounds = [
                    k6_fixed_rate(base, sample, args.seconds, work) for _ in range(args.rounds)
                ]
            finally:
                api.stop()
        finally:
            nats.stop()
            pg.stop()
    p99s = sorted(r["p99_ms"] for r in rounds)
    result: dict[str, Any] = {
        "benchmark": "fulfillment",
        "machine": machine(),
        "ingestion": ingestion,
        "lookup_wrk": lookup,
        "trivial_route_wrk": trivial,
        "lookup_share_of_trivial": round(lookup["requests_per_s"] / trivial["requests_per_s"], 3),
        "lookup_k6_1000_per_s": {"rounds": rounds, "median_p99_ms": p99s[len(p99s) // 2]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
