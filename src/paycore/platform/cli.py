"""What every ``paycore`` command shares: the console, and the settings read once with a clear
message for a bad value."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from paycore.platform.settings import Settings, problems

console = Console(stderr=True)


def load_settings() -> Settings:
    """Settings from the environment; a bad value stops the command with a clear message."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in problems(exc, Settings):
            name, _, message = line.partition(": ")
            console.print(f"[red]configuration error[/red] {name}: {message}")
        raise typer.Exit(2) from None
