"""Serve the default and the fallback payment processor simulators in one process.

Both run on uvicorn (uvloop, httptools) in one event loop; one SIGINT/SIGTERM handler stops both
gracefully, and the process then exits with code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import uvicorn
import uvloop

from paycore.payments.simulator.processor import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_TOKEN,
    PaymentProcessorApp,
    ProcessorState,
    parse_fee,
)


@dataclass(frozen=True)
class BoundProcessor:
    """A processor ready to serve: its name, its app and its bound (not yet listening) socket."""

    name: str
    app: PaymentProcessorApp
    sock: socket.socket

    @property
    def url(self) -> str:
        """Base URL of the processor (the real port when 0 was asked for)."""
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def open_processors(
    host: str,
    ports: tuple[int, int],
    fees: tuple[Decimal, Decimal],
    *,
    token: str = DEFAULT_TOKEN,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> list[BoundProcessor]:
    """Build the ``default`` and ``fallback`` processors and bind their ports.

    ValueError for a bad setting; OSError saying which port when one cannot be bound.
    """
    if ports[0] == ports[1] and ports[0] != 0:
        raise ValueError(f"the default and fallback ports must differ (both are {ports[0]})")
    states = [ProcessorState(fee, token=token, max_in_flight=max_in_flight) for fee in fees]
    bound: list[BoundProcessor] = []
    try:
        for name, state, port in zip(("default", "fallback"), states, ports, strict=True):
            bound.append(BoundProcessor(name, PaymentProcessorApp(state), _bind(host, port)))
    except BaseException:
        for processor in bound:
            processor.sock.close()
        raise
    return bound


def parse_fees(default: str, fallback: str) -> tuple[Decimal, Decimal]:
    """The two fees given as text on the command line; ValueError naming the bad option."""
    fees: list[Decimal] = []
    for option, text in (("--default-fee", default), ("--fallback-fee", fallback)):
        try:
            fees.append(parse_fee(text))
        except ValueError as exc:
            raise ValueError(f"{option}: {exc}") from None
    return fees[0], fees[1]


def _bind(host: str, port: int) -> socket.socket:
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class _Server(uvicorn.Server):
    # Signals are handled once for every server (see _serve_all): uvicorn's own handler would
    # go to the last server started only, and re-raise the signal at exit (exit code -15).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve_processors(processors: Sequence[BoundProcessor], graceful_timeout: int = 10) -> None:
    """Serve every processor on its socket until SIGINT or SIGTERM, then drain and return.

    Payments still in their delay get ``graceful_timeout`` seconds to finish; a second Ctrl-C
    stops at once.
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_all(processors, graceful_timeout))


async def _serve_all(processors: Sequence[BoundProcessor], graceful_timeout: int) -> None:
    servers = [
        _Server(
            uvicorn.Config(
                processor.app,
                http="httptools",
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=graceful_timeout,
            )
        )
        for processor in processors
    ]

    def stop() -> None:
        for server in servers:
            server.force_exit = server.should_exit
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(
            *(s.serve(sockets=[p.sock]) for s, p in zip(servers, processors, strict=True))
        )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def banner(processors: Sequence[BoundProcessor]) -> str:
    """What the command prints once both processors listen."""
    lines = ["payment processors are up (Rinha de Backend 2025 processor API)"]
    lines += [f"  {p.name:<9} {p.url}   fee {p.app.state.fee}" for p in processors]
    lines.append("  admin endpoints need the X-Rinha-Token header. Press Ctrl-C to stop.")
    return "\n".join(lines)
