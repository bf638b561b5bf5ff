"""An open-loop HTTP/1.1 load generator: requests sent at a constant arrival rate whatever the
answers' pace, each timed from the moment it was due, so a slow answer delays no later
request's clock (no coordinated omission). It does the least a client can: the requests are
encoded before the clock starts, and each answer is read for its status and length only. At
1,000 requests/s it takes a tenth of the CPU k6 takes, which on a 2-core machine is CPU the
servers under test get back.

    .venv/bin/python bench/openloop.py --url http://127.0.0.1:8000 --rate 1000 \
        --warmup 5 --duration 30 --requests requests.jsonl --out results.json

``requests.jsonl`` holds one request per line, ``[method, path, {headers}, body]``, at least
``rate x (warmup + duration)`` of them, sent in order; those of the first ``warmup`` seconds
are not counted. Writes one JSON object: the statuses, and per counted request its latency
(``latency_ms``: from when it was due to its answer's last byte) and how late the generator
itself sent it (``send_lag_ms``: if that is not near zero, the generator, not the server, was
short of time).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
import uvloop

CONNECTIONS = 64
"""Connections opened before the clock starts; more are opened while all are busy."""
MOST_CONNECTIONS = 1000
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, done: Callable[[Connection, int, int, float], None]) -> None:
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.expected: int | None = None
        self.status = 0
        self.index = -1
        self.closing = False  # the answer being read says the server closes the connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, raw: bytes, index: int) -> None:
        assert self.transport is not None
        assert self.index < 0
        self.index = index
        self.transport.write(raw)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = _LENGTH.search(head)
            if length is None:
                raise RuntimeError(f"an answer without a content-length: {head[:200]!r}")
            self.status = int(head[9:12])
            self.expected = end + 4 + int(length.group(1))
            self.closing = _CLOSE.search(head) is not None
        if len(self.buffer) >= self.expected:
            index, status = self.index, self.status
            del self.buffer[: self.expected]
            self.expected, self.index = None, -1
            if self.closing and self.transport is not None:
                self.transport.close()
                self.transport = None  # not reused
            self.done(self, index, status, time.monotonic())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.index >= 0:
            index, self.index = self.index, -1
            self.done(self, index, 0, time.monotonic())  # status 0: the connection broke


def encode(host: str, method: str, path: str, headers: dict[str, str], body: str) -> bytes:
    payload = body.encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def run(
    url: str, requests: Sequence[bytes], rate: float, counted_from: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    statuses: list[int] = [-1] * len(requests)
    answered_at: list[float] = [0.0] * len(requests)
    sent_at: list[float] = [0.0] * len(requests)
    idle: list[Connection] = []
    freed = asyncio.Event()
    finished = asyncio.Event()
    outstanding = 0
    sent_all = False
    connections: list[Connection] = []

    def done(conn: Connection, index: int, status: int, moment: float) -> None:
        nonlocal outstanding
        statuses[index], answered_at[index] = status, moment
        outstanding -= 1
        if conn.transport is not None:
            idle.append(conn)
            freed.set()
        if outstanding == 0 and sent_all:
            finished.set()

    async def connect() -> Connection:
        _, conn = await loop.create_connection(lambda: Connection(done), host, port)
        connections.append(conn)
        return conn

    idle += [await connect() for _ in range(CONNECTIONS)]
    start = time.monotonic() + 0.05
    for index, raw in enumerate(requests):
        due = start + index / rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        conn = None
        while conn is None:
            if idle:
                conn = idle.pop()
                if conn.transport is None:  # the server closed it while it was idle
                    conn = None
            elif sum(c.transport is not None for c in connections) < MOST_CONNECTIONS:
                conn = await connect()
            else:
                freed.clear()
                await freed.wait()
        outstanding += 1
        sent_at[index] = time.monotonic()
        conn.send(raw, index)
    sent_all = True
    if outstanding:
        await finished.wait()
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()

    counted = range(counted_from, len(requests))
    due_at = [start + n / rate for n in range(len(requests))]
    return {
        "sent": len(requests),
        "counted": len(counted),
        "statuses": dict(collections.Counter(statuses)),
        "counted_statuses": dict(collections.Counter(statuses[n] for n in counted)),
        "latency_ms": [round((answered_at[n] - due_at[n]) * 1000, 3) for n in counted],
        "send_lag_ms": [round((sent_at[n] - due_at[n]) * 1000, 3) for n in counted],
        "connections": len(connections),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--warmup", type=float, default=5, help="seconds not counted")
    parser.add_argument("--duration", type=float, required=True, help="seconds counted")
    parser.add_argument("--requests", type=Path, required=True, help="a JSON-lines file")
    parser.add_argument("--out", type=Path, required=True, help="where the results go (JSON)")
    args = parser.parse_args()
    total = round(args.rate * (args.warmup + args.duration))
    host = urlsplit(args.url).netloc
    with args.requests.open("rb") as lines:
        requests = [encode(host, *orjson.loads(line)) for line in itertools.islice(lines, total)]
    if len(requests) < total:
        parser.error(f"{args.requests} holds {len(requests)} requests; {total} are needed")
    counted_from = round(args.rate * args.warmup)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        found = runner.run(run(args.url, requests, args.rate, counted_from))
    args.out.write_bytes(orjson.dumps(found, option=orjson.OPT_NON_STR_KEYS))


if __name__ == "__main__":
    main()
