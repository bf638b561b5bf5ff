"""Benchmark: the floor under the order accept — the least a durable accept costs in Python on
this machine — measured with the same k6 script as ``bench/commerce_orders.py``.

    .venv/bin/python bench/floor_orders.py [--rate 250 500] [--duration 20] [--consumer]

The server here does only what an accept must: a raw ASGI app on uvicorn (uvloop, httptools),
the body decoded and checked by msgspec, group commit into SQLite (WAL, synchronous=FULL) of
the order and its outbox row, the answer after the commit, and a relay publishing each
committed event to NATS JetStream (fsync always, ack awaited) and deleting the published rows
every 50 ms. No catalog, no prices, no middleware, no metrics, no logs: what is left between
this and paycore's API (``commerce_orders.py --no-worker``) is the cost of those.

``--consumer`` adds the floor under the analytics worker, in a process of its own: a durable
JetStream pull consumer that records each order once in its own SQLite file (synchronous=FULL,
one transaction per batch, then the acks) and the end-to-end lag (recorded minus accepted), as
``commerce_orders.py`` measures paycore's. As there, a 5-second warm-up at the same rate is not
counted. Prints a table and writes ``bench/results/floor_orders.json`` (with ``--consumer``,
``floor_orders_consumer.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from servers import free_port, start_nats  # noqa: E402


class Line(msgspec.Struct):
    name: str
    quantity: int


class Order(msgspec.Struct):
    email: str
    products: list[Line]


DELETE_EVERY_SECONDS = 0.05  # as paycore's relay deletes published rows
LINGER_SECONDS = 0.01  # after a batch smaller than 100, as paycore's consumers wait


class Event(msgspec.Struct):
    id: int
    email: str
    products: list[Line]
    accepted_ms: float


class Floor:
    """The accept path and nothing else; ``app`` is the ASGI application."""

    def __init__(self, database: str, nats_url: str) -> None:
        self.db = sqlite3.connect(database, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, body BLOB)")
        self.db.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY, body BLOB)")
        self.nats_url = nats_url
        self.decode = msgspec.json.Decoder(Order).decode
        self.encode = msgspec.json.Encoder().encode
        self.waiting: asyncio.Queue[tuple[Order, bytes, asyncio.Future[int]]] = asyncio.Queue()
        self.committed: asyncio.Queue[list[tuple[int, bytes]]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    async def commit_loop(self) -> None:
        while True:
            batch = [await self.waiting.get()]
            while not self.waiting.empty():
                batch.append(self.waiting.get_nowait())
            self.db.execute("BEGIN IMMEDIATE")
            first = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM orders").fetchone()[0]
            orders = [(first + n, order.email, body) for n, (order, body, _) in enumerate(batch)]
            self.db.executemany("INSERT INTO orders VALUES (?, ?, ?)", orders)
            now_ms = time.time() * 1000
            events = [
                (first + n, self.encode(Event(first + n, order.email, order.products, now_ms)))
                for n, (order, _, _) in enumerate(batch)
            ]
            self.db.executemany("INSERT INTO outbox VALUES (?, ?)", events)
            self.db.execute("COMMIT")
            for n, (_, _, answer) in enumerate(batch):
                answer.set_result(first + n)
            self.committed.put_nowait(events)

    async def relay_loop(self) -> None:
        import nats

        client = await nats.connect(self.nats_url)
        stream = client.jetstream()
        await stream.add_stream(name="FLOOR", subjects=["floor-orders"])
        published, deleted_at = 0, time.monotonic()
        while True:
            # Everything committed meanwhile goes in one round of publishes, and the rows of
            # what the stream confirmed are deleted every DELETE_EVERY_SECONDS, as paycore's
            # relay does: a delete per commit would double the fsyncs on the loop.
            events: list[tuple[int, bytes]] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DELETE_EVERY_SECONDS):
                    events = await self.committed.get()
            while not self.committed.empty():
                events.extend(self.committed.get_nowait())
            if events:
                acks = [await stream.publish_async("floor-orders", body) for _, body in events]
                await asyncio.gather(*acks)
                published = events[-1][0]
            if published and time.monotonic() - deleted_at >= DELETE_EVERY_SECONDS:
                self.db.execute("DELETE FROM outbox WHERE seq <= ?", (published,))
                deleted_at, published = time.monotonic(), 0

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                self.tasks = [
                    asyncio.create_task(self.commit_loop()),
                    asyncio.create_task(self.relay_loop()),
                ]
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        if scope["method"] != "POST":
            await self.answer(send, 200, b"{}")
            return
        try:
            order = self.decode(body)
        except msgspec.ValidationError as exc:
            await self.answer(send, 422, self.encode({"detail": str(exc)}))
            return
        if not order.products or any(line.quantity < 1 for line in order.products):
            await self.answer(send, 422, b'{"detail":"bad products"}')
            return
        committed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.put_nowait((order, body, committed))
        order_id = await committed
        await self.answer(send, 201, self.encode({"id": order_id, "email": order.email}))

    @staticmethod
    async def answer(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def consume(database: str, nats_url: str) -> None:
    """The floor under the analytics worker: a durable pull consumer that records each order
    once (its id as the key) with the time it was recorded, one SQLite transaction
    (synchronous=FULL) per fetched batch, and acknowledges the batch after the commit. It
    pulls as paycore does (``_Puller``: the client's own ``fetch`` holds messages back)."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    from paycore.platform.messaging.brokers.nats import _Puller

    db = sqlite3.connect(database, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL"):
        db.execute(f"PRAGMA {pragma}")
    db.execute(
        "CREATE TABLE IF NOT EXISTS recorded (id INTEGER PRIMARY KEY, email TEXT, items INTEGER,"
        " accepted_ms REAL, recorded_ms REAL)"
    )
    decode = msgspec.json.Decoder(Event).decode
    client = await nats.connect(nats_url)
    stream = client.jetstream()
    await stream.add_stream(name="FLOOR", subjects=["floor-orders"])
    config = ConsumerConfig(durable_name="analytics", ack_policy=AckPolicy.EXPLICIT)
    await stream.add_consumer("FLOOR", config=config)
    puller = _Puller(client, "FLOOR", "analytics")
    await puller.open()
    print("ready", flush=True)  # the bench starts the accept once the consumer pulls
    while True:
        msgs = await puller.fetch(100, 1.0)
        if not msgs:
            continue
        events = [decode(m.data) for m in msgs]
        now_ms = time.time() * 1000
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT OR IGNORE INTO recorded VALUES (?, ?, ?, ?, ?)",
            [
                (e.id, e.email, sum(p.quantity for p in e.products), e.accepted_ms, now_ms)
                for e in events
            ],
        )
        db.execute("COMMIT")
        for m in msgs:
            await m.ack()
        if len(msgs) < 100:
            await asyncio.sleep(LINGER_SECONDS)  # what comes meanwhile makes one batch


def serve(port: int, database: str, nats_url: str) -> None:
    import uvicorn

    floor = Floor(database, nats_url)
    uvicorn.run(
        floor.app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        interface="asgi3",
        log_level="warning",
    )


def bench_one(
    rate: int, duration: int, nats_url: str, work: Path, consumer: bool
) -> dict[str, Any]:
    work.mkdir(parents=True)
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port), str(work / "floor.db"), nats_url]
    recorded = work / "recorded.db"
    consume_command = [sys.executable, __file__, "--consume", str(recorded), nats_url]
    helpers = [subprocess.Popen(consume_command, stdout=subprocess.PIPE)] if consumer else []
    for helper in helpers:
        assert helper.stdout is not None
        if helper.stdout.readline().strip() != b"ready":  # or the end: it failed
            raise RuntimeError("the floor consumer did not start")
    server = subprocess.Popen(command)
    lag: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the floor server did not start") from None
                time.sleep(0.1)
        with harness.cpu_use() as cores:
            metrics = harness.run_orders_k6(f"http://127.0.0.1:{port}", rate, duration, work)
        stored = sqlite3.connect(work / "floor.db").execute("SELECT count(*) FROM orders")
        accepted, counted, figures = harness.counted_orders(metrics, duration)
        if figures["failed"] or stored.fetchone()[0] != accepted:
            raise RuntimeError("the floor server refused or lost orders")
        if consumer:
            lag = recorded_lags(recorded, accepted, accepted - counted)
    finally:
        for process in (server, *helpers):
            process.terminate()
            process.wait(30)
    return {
        "database": "sqlite",
        "target_rate": rate,
        "duration_s": duration,
        **figures,
        "cpu_cores": cores,
        "consumer": consumer,
        "lag_ms": harness.spread(lag) if consumer else None,
    }


def recorded_lags(
    recorded: Path, expected: int, counted_after: int, timeout: float = 60
) -> list[float]:
    """Wait until the consumer has recorded ``expected`` orders; the lag in ms of each one with
    an id above ``counted_after`` (the warm-up's orders come first)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.closing(sqlite3.connect(recorded)) as db:
            rows = list(db.execute("SELECT id, recorded_ms - accepted_ms FROM recorded"))
        if len(rows) >= expected:
            return [lag for order_id, lag in rows if order_id > counted_after]
        if time.monotonic() > deadline:
            raise RuntimeError(f"the floor consumer recorded {len(rows)} of {expected} orders")
        time.sleep(0.5)


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    if sys.argv[1:2] == ["--consume"]:
        asyncio.run(consume(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, nargs="+", default=[250, 500], help="orders/s")
    parser.add_argument("--duration", type=int, default=20, help="seconds (default 20)")
    parser.add_argument(
        "--consumer",
        action="store_true",
        help="also run the floor under the analytics worker (a durable consumer recording each"
        " order once) and report the end-to-end lag",
    )
    parser.add_argument("--out", type=Path, help="results file (default bench/results/…)")
    args = parser.parse_args()
    name = "floor_orders_consumer" if args.consumer else "floor_orders"
    out: Path = args.out or ROOT / "bench" / "results" / f"{name}.json"
    with tempfile.TemporaryDirectory(prefix="paycore-floor-") as tmp:
        nats = start_nats(Path(tmp) / "nats")
        try:
            runs = [
                bench_one(rate, args.duration, nats.url, Path(tmp) / f"floor-{rate}", args.consumer)
                for rate in args.rate
            ]
        finally:
            nats.stop()
    result = harness.write_results(out, "floor under the order accept", runs)
    rows = [
        (
            r["target_rate"],
            r["accepted_per_s"],
            *harness.accept_and_lag_cells(r),
            r["failed"],
        )
        for r in runs
    ]
    columns = ("target/s", "accepted/s", "accept p50", "accept p99", "lag p50", "lag p99")
    harness.print_table((*columns, "failed"), rows)
    harness.print_cpu(runs)
    print(f"\nmachine: {result['machine']}\nwritten to {out}")


if __name__ == "__main__":
    main()
