"""The ports a command is about to serve on, checked before it starts anything, so that a port
in use is said in words rather than found in a child process's log."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Listener:
    """Who will listen where, and the setting that moves it."""

    what: str  # "the API"
    host: str
    port: int
    setting: str  # "PAYCORE_API_PORT"


def unavailable(listener: Listener) -> str | None:
    """Why ``listener`` could not listen now ("address in use", …), or None. The check binds
    as the servers do (``SO_REUSEADDR``: a port left in TIME_WAIT by an earlier run is free)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            listener.host, listener.port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror:
        return "unknown address"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return None


def conflicts(listeners: Iterable[Listener]) -> Iterator[tuple[Listener, str]]:
    """Each listener that cannot listen, with why: its port is in use, not an address of this
    machine, or taken by an earlier listener of the same list."""
    taken: dict[tuple[str, int], Listener] = {}
    for listener in listeners:
        earlier = taken.setdefault((listener.host, listener.port), listener)
        if earlier is not listener:
            yield listener, f"{earlier.what} is set to use it too"
        elif reason := unavailable(listener):
            yield listener, reason


_REASONS = {
    errno.EADDRINUSE: "address in use",
    errno.EACCES: "permission denied",
    errno.EADDRNOTAVAIL: "not an address of this machine",
}
