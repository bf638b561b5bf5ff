"""The keep-alive HTTP client against real sockets: reuse, chunked and closing answers, and
the difference between "never sent" and "sent, answer unknown"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop
from servers import free_port

from paycore.platform.web.client import ConnectFailed, HttpClient

Reply = Callable[[bytes], Awaitable[bytes | None]]


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[int], dict[str, Reply]]]:
    """A raw HTTP server: ``replies['fn']`` turns a request head into the raw answer."""
    connections: list[int] = []
    replies: dict[str, Reply] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                answer = await replies["fn"](head + body)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    port = free_port()
    srv = await asyncio.start_server(handle, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}", connections, replies
    srv.close()


def ok(body: bytes = b'{"ok":true}') -> Reply:
    async def reply(_: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    return reply


async def test_requests_reuse_one_keep_alive_connection(server: tuple) -> None:
    url, connections, replies = server
    seen: list[bytes] = []

    async def echo(request: bytes) -> bytes:
        seen.append(request)
        return await ok(b"pong")(request)

    replies["fn"] = echo
    client = HttpClient(url, max_connections=4)
    for _ in range(5):
        assert await client.request("POST", "/x", b'{"a":1}', timeout=2) == (200, b"pong")
    await client.close()
    assert len(connections) == 1
    assert seen[0].startswith(b"POST /x HTTP/1.1\r\n")
    assert seen[0].endswith(b'\r\n\r\n{"a":1}')
    assert b"Content-Length: 7" in seen[0]


async def test_chunked_and_closing_answers(server: tuple) -> None:
    url, connections, replies = server

    async def chunked(_: bytes) -> bytes:
        return (
            b"HTTP/1.1 422 Unprocessable\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )

    replies["fn"] = chunked
    client = HttpClient(url)
    assert await client.request("GET", "/", timeout=2) == (422, b"abcde")

    async def closing(_: bytes) -> bytes:
        return b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"

    replies["fn"] = closing
    assert await client.request("GET", "/", timeout=2) == (500, b"no")
    assert await client.request("GET", "/", timeout=2) == (500, b"no")
    await client.close()
    assert len(connections) == 2  # the first keep-alive one, then a new one after the close


async def test_nothing_sent_is_told_apart_from_an_unknown_answer(server: tuple) -> None:
    url, _, replies = server
    with pytest.raises(ConnectFailed):
        await HttpClient(f"http://127.0.0.1:{free_port()}").request("GET", "/", timeout=2)

    async def silent(_: bytes) -> bytes:
        await asyncio.sleep(5)
        return b""

    replies["fn"] = silent
    client = HttpClient(url)
    with pytest.raises(TimeoutError):
        await client.request("POST", "/pay", b"{}", timeout=0.2)

    async def hang_up(_: bytes) -> None:
        return None

    replies["fn"] = hang_up
    with pytest.raises(ConnectionError) as caught:
        await client.request("POST", "/pay", b"{}", timeout=2)
    assert not isinstance(caught.value, ConnectFailed)
    await client.close()


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError, match="http://"):
        HttpClient("https://example.test")


def test_works_on_uvloop_as_the_services_run_it() -> None:
    async def scenario() -> tuple[int, bytes]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nuv")
            await writer.drain()
            writer.close()

        port = free_port()
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        client = HttpClient(f"http://127.0.0.1:{port}")
        try:
            return await client.request("GET", "/", timeout=2)
        finally:
            await client.close()
            server.close()

    assert uvloop.run(scenario()) == (200, b"uv")
