"""Benchmark: this process's CPU and the wall time per message to publish a batch to JetStream
and wait for every acknowledgement, paycore's NATS adapter beside the client's own
``publish_async``.

    .venv/bin/python bench/nats_publish.py [--batch 2000 ...] [--rounds 10]

Starts its own nats-server (fsync on every write) and publishes batches of ``--batch`` events
shaped as the ledger's ``banking.transfer.posted`` (three headers, a key and a message id),
``--rounds`` of each way for each ``--batch`` size, alternated on one connection each:

- ``client``: one ``publish_async`` per message, then every future awaited (what the adapter
  did before ``brokers.nats_batch``);
- ``one by one``: paycore's publisher, each message acknowledged (and synced) alone;
- ``paycore``: ``NatsBus.publish`` of the batch (``brokers.nats_batch.Publisher``): an atomic
  batch, synced once, from ``ATOMIC_FROM`` messages on.

Prints, per way and size, the median CPU time (``time.process_time``) and wall time per
message, and the CPU ratio of paycore to the client; writes ``bench/results/nats_publish.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from servers import start_nats  # noqa: E402

from paycore.platform.ids import uuid7  # noqa: E402
from paycore.platform.messaging.brokers.nats import NatsBus  # noqa: E402
from paycore.platform.messaging.bus import Envelope  # noqa: E402

TOPIC = "bench.posted"
HEADERS = {
    "paycore-correlation-id": "0193a0b4-0000-7000-8000-000000000000",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "paycore-created-at": "1765000000000",
}

Publish = Callable[[Sequence[Envelope]], Awaitable[None]]


def events(count: int) -> list[Envelope]:
    out = []
    for seq in range(count):
        entry = uuid7()
        body = orjson.dumps(
            {
                "entry_id": entry,
                "transfer_id": uuid7(),
                "debit_account_id": uuid7(),
                "credit_account_id": uuid7(),
                "amount": 12345,
                "currency": "BRL",
                "posted_at": "2026-12-07T01:00:00.000000Z",
                "seq": seq,
            }
        )
        out.append(Envelope(TOPIC, body, id=f"posted-{entry}", key=entry, headers=HEADERS))
    return out


def client_way(bus: NatsBus) -> Publish:
    js = bus._js

    async def publish(envelopes: Sequence[Envelope]) -> None:
        futures = []
        for env in envelopes:
            headers = {**env.headers, "Nats-Msg-Id": env.id, "paycore-key": env.key or ""}
            futures.append(await js.publish_async(env.topic, env.body, headers=headers))
        await asyncio.gather(*futures)

    return publish


async def measure(batch: int, rounds: int) -> list[dict[str, Any]]:
    server = start_nats(Path(tempfile.mkdtemp(prefix="paycore-bench-nats-")))
    buses = {way: NatsBus(server.url) for way in ("client", "one by one", "paycore")}
    try:
        for bus in buses.values():
            await bus.connect()
            await bus.ensure_topic(TOPIC)
        buses["one by one"]._atomic.clear()  # as if its stream took no atomic batches
        ways: dict[str, Publish] = {"client": client_way(buses["client"])}
        ways["one by one"] = buses["one by one"].publish
        ways["paycore"] = buses["paycore"].publish
        took: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
        for publish in ways.values():  # warm-up, not counted
            await publish(events(200))
        for n in range(rounds):
            order = list(ways)[n % len(ways) :] + list(ways)[: n % len(ways)]
            for way in order:
                envelopes = events(batch)
                cpu, wall = time.process_time(), time.perf_counter()
                await ways[way](envelopes)
                took[way].append((time.process_time() - cpu, time.perf_counter() - wall))
        return [
            {
                "way": way,
                "batch": batch,
                "rounds": rounds,
                "cpu_us_per_message": round(statistics.median(c for c, _ in t) / batch * 1e6, 1),
                "wall_us_per_message": round(statistics.median(w for _, w in t) / batch * 1e6, 1),
            }
            for way, t in took.items()
        ]
    finally:
        for bus in buses.values():
            await bus.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[2000], help="messages per batch")
    parser.add_argument("--rounds", type=int, default=10, help="batches of each way")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/nats_publish.json")
    args = parser.parse_args()
    if min(args.batch) < 1 or args.rounds < 1:
        parser.error("--batch and --rounds must be at least 1")
    runs = [run for batch in args.batch for run in asyncio.run(measure(batch, args.rounds))]
    harness.print_table(
        ("batch", "way", "CPU/message", "wall/message"),
        [
            (
                r["batch"],
                r["way"],
                f"{r['cpu_us_per_message']} µs",
                f"{r['wall_us_per_message']} µs",
            )
            for r in runs
        ],
        width=14,
    )
    ratios = {}
    for batch in args.batch:
        by_way = {r["way"]: r for r in runs if r["batch"] == batch}
        ratio = by_way["paycore"]["cpu_us_per_message"] / by_way["client"]["cpu_us_per_message"]
        ratios[str(batch)] = round(ratio, 2)
        print(f"batch {batch}: paycore/client CPU per message {ratio:.2f}")
    result = harness.write_results(args.out, "NATS batch publish", runs, cpu_ratio=ratios)
    print(f"machine: {result['machine']}\nwritten to {args.out}")


if __name__ == "__main__":
    sys.exit(main())
