"""Failures the operator fixes, not the code: a server a command cannot reach, a database that
was never migrated. Each says in one line what was tried and why it failed; the ``paycore``
command prints that line instead of a traceback and exits with status 1.

Standard library only: the persistence and messaging packages raise these."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

CONNECT_TIMEOUT_SECONDS = 5.0
"""How long a command, or a process starting, tries to reach a server before it gives up."""


class OperatorError(Exception):
    """A failure whose message is the whole story, in one line."""


class Unreachable(OperatorError):
    """A server (``"broker"``, ``"database"``) could not be reached within
    ``CONNECT_TIMEOUT_SECONDS``: down, refusing, unknown, or refusing our credentials."""

    def __init__(self, server: str, url: str, cause: BaseException) -> None:
        self.server = server
        self.url = redacted(url)
        self.reason = describe(cause)
        super().__init__(f"cannot reach the {server} at {self.url} ({self.reason})")


def describe(exc: BaseException) -> str:
    """A few words on why a connection failed: a refusal, a timeout or an unknown host found
    anywhere in the chain of causes of ``exc``, else the first line of the innermost cause."""
    chain = [exc]
    while (cause := chain[-1].__cause__) is not None:
        chain.append(cause)
    for link in chain:
        text = str(link).lower()
        if isinstance(link, ConnectionRefusedError) or (
            "connect call failed" in text or "connection refused" in text
        ):
            return "connection refused"
        if isinstance(link, TimeoutError):
            return f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"
        if isinstance(link, socket.gaierror):
            return "unknown host"
    innermost = chain[-1]
    lines = str(innermost).strip().splitlines()
    return lines[0] if lines else type(innermost).__name__


def redacted(url: str) -> str:
    """The URL with its password, if any, replaced by ``***`` (it is printed and logged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))
