"""``bench/openloop.py``, the benchmarks' open-loop load generator, against a small server on
127.0.0.1: every request is sent once, each answer's status is counted, and a slow answer
holds up no other request (the generator does not wait for answers to send)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import orjson

GENERATOR = Path(__file__).resolve().parents[3] / "bench" / "openloop.py"
SLOW_S = 0.3


async def serve(seen: list[bytes]) -> asyncio.Server:
    """Answers 202, 500 to a body ``fail``, 202 after ``SLOW_S`` to a body ``slow``, and 202
    then closes the connection (saying so) to a body ``close``."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            seen.append(body)
            if body == b"slow":
                await asyncio.sleep(SLOW_S)
            status = b"500 Internal Server Error" if body == b"fail" else b"202 Accepted"
            closing = b"\r\nconnection: close" if body == b"close" else b""
            writer.write(b"HTTP/1.1 " + status + closing + b"\r\ncontent-length: 2\r\n\r\n{}")
            if body == b"close" or reader.at_eof():
                break

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await answer(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(guarded, "127.0.0.1", 0)


async def generate(tmp_path: Path, bodies: list[str], rate: int, warmup: float) -> dict:
    seen: list[bytes] = []
    server = await serve(seen)
    port = server.sockets[0].getsockname()[1]
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(
        b"".join(orjson.dumps(["POST", "/things", {"X-Test": "1"}, b]) + b"\n" for b in bodies)
    )
    out = tmp_path / "out.json"
    async with server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(GENERATOR),
            *("--url", f"http://127.0.0.1:{port}", "--rate", str(rate)),
            *("--warmup", str(warmup), "--duration", str(len(bodies) / rate - warmup)),
            *("--requests", str(requests), "--out", str(out)),
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    found = json.loads(out.read_bytes())
    found["seen"] = sorted(seen)
    return found


async def test_each_request_is_sent_once_and_each_answer_counted(tmp_path: Path) -> None:
    bodies = ["warm"] * 20 + ["ok"] * 70 + ["fail"] * 5 + ["slow"] * 5
    found = await generate(tmp_path, bodies, rate=200, warmup=0.1)

    assert found["seen"] == sorted(b.encode() for b in bodies)
    assert found["statuses"] == {"202": 95, "500": 5}
    assert found["counted"] == 80
    assert found["counted_statuses"] == {"202": 75, "500": 5}
    assert len(found["latency_ms"]) == len(found["send_lag_ms"]) == 80


async def test_a_slow_answer_holds_up_no_other_request(tmp_path: Path) -> None:
    bodies = ["ok"] * 10 + ["slow"] + ["ok"] * 9
    found = await generate(tmp_path, bodies, rate=100, warmup=0)

    latencies = found["latency_ms"]
    assert latencies[10] >= SLOW_S * 1000
    assert max(latencies[:10] + latencies[11:]) < SLOW_S * 1000  # not held up behind it


async def test_connections_the_server_closes_are_replaced(tmp_path: Path) -> None:
    bodies = ["close"] * 150
    found = await generate(tmp_path, bodies, rate=500, warmup=0)

    assert found["seen"] == [b"close"] * 150
    assert found["statuses"] == {"202": 150}
    assert found["connections"] > 64  # more than it opened before the clock started


async def test_too_few_requests_is_an_error(tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(orjson.dumps(["GET", "/", {}, ""]) + b"\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(GENERATOR),
        *("--url", "http://127.0.0.1:9", "--rate", "10", "--duration", "1", "--warmup", "0"),
        *("--requests", str(requests), "--out", str(tmp_path / "out.json")),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "holds 1 requests; 10 are needed" in err.decode()
