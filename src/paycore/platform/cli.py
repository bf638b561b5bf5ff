"""What every ``paycore`` command shares: the console, the settings read once with a clear
message for a bad value, and the command group that turns a failure the operator fixes into one
line instead of a traceback."""

from __future__ import annotations

import logging
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from paycore.platform.failures import OperatorError, Unreachable
from paycore.platform.settings import Settings, problems

console = Console(stderr=True)

HINTS = {
    "broker": "start it with `paycore up` or set PAYCORE_BROKER_URL",
    "database": "start it or set PAYCORE_DATABASE_URL",
    "sqlite": "check that folder or set PAYCORE_DATA_DIR",
}
"""What to do about a server a command could not reach, by kind of server."""


def load_settings() -> Settings:
    """Settings from the environment; a bad value stops the command with a clear message."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in problems(exc, Settings):
            name, _, message = line.partition(": ")
            console.print(f"[red]configuration error[/red] {name}: {message}")
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as one red line (never wrapped); raise what this returns."""
    console.print(f"[red]{escape(message)}[/red]", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def explain(exc: OperatorError) -> str:
    """The failure's line, with what to do about a server that could not be reached."""
    if not isinstance(exc, Unreachable):
        return str(exc)
    kind = "sqlite" if exc.url.startswith("sqlite") else exc.server
    return f"{exc}; {HINTS[kind]}" if kind in HINTS else str(exc)


class Commands(TyperGroup):
    """The ``paycore`` command: a failure the operator fixes (``OperatorError``: a server not
    reached, a database not migrated) is one red line saying what to do and exit status 1;
    client libraries' own log records are not shown (their failures come back as those)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context, vendored or not by typer
        _show_own_warnings_only()
        try:
            return super().invoke(ctx)
        except OperatorError as exc:
            raise fail(explain(exc)) from None


class _OwnWarnings(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("paycore"):
            console.print(f"warning: {record.getMessage()}", markup=False, highlight=False)


def _show_own_warnings_only() -> None:
    """Until a process sets up its logs (``api``, ``worker``): paycore's warnings as plain
    lines, nothing of the libraries' (with no handler at all, Python would print their
    warnings and tracebacks on stderr). Logging set up already (a test run) is left alone."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(_OwnWarnings(logging.WARNING))
