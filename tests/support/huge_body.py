"""A client that sends a huge request body the way an abusive one does: all of it, from a
generator (the test never holds it), declared by ``Content-Length`` or chunked, whatever the
server answers meanwhile; the answer is read as soon as it comes. Plain sockets, because HTTP
clients stop at the first write error and may lose an answer sent early."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

CHUNK = b"x" * (1 << 20)


def _body(total: int, chunked: bool) -> Iterator[bytes]:
    """The body on the wire, a mebibyte at a time (one buffer, sent again and again)."""
    full, rest = divmod(total, len(CHUNK))
    for piece in [CHUNK] * full + ([CHUNK[:rest]] if rest else []):
        yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def send(
    port: int,
    method: str,
    path: str,
    total: int,
    *,
    chunked: bool,
    headers: dict[str, str] | None = None,
    timeout: float = 120,
) -> int | None:
    """Send ``total`` bytes to ``127.0.0.1:port``: the answer's status, or None if the server
    closed the connection without one."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    pending: bytes | None = ("\r\n".join(lines) + "\r\n\r\n").encode()
    body, answer = _body(total, chunked), b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.setblocking(False)
        while pending is not None or b"\r\n" not in answer:
            writing = [sock] if pending is not None else []
            readable, writable, _ = select.select([sock], writing, [], timeout)
            if not readable and not writable:
                raise TimeoutError(f"nothing happened on {path} for {timeout} s")
            try:
                if readable:
                    received = sock.recv(65536)
                    if not received:
                        break
                    answer += received
                if writable and pending is not None:
                    pending = pending[sock.send(pending) :] or next(body, None)
            except (ConnectionResetError, BrokenPipeError):
                break
    status = answer.split(b"\r\n", 1)[0].split(b" ")
    return int(status[1]) if len(status) > 1 else None
