"""The registry of paycore's bounded contexts: one line each.

A context is a package ``paycore.<name>`` holding everything it owns (see
``docs/architecture.md``); this list is the only place outside the contexts' folders that names
them. Processes, the CLI, migrations and the tests find the contexts here, and each context's
parts by convention: ``processes.py`` (``PROCESSES``: what it runs), ``cli.py`` (``register``:
its commands, optional), ``migrations/`` (its Alembic branch, optional).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from paycore.platform.runtime import Processes

NAMES: tuple[str, ...] = (
    "commerce",
    "fulfillment",
    "gateway",
    "payments",
)


def chosen(names: Sequence[str]) -> list[str]:
    """The contexts asked for (all when none), each checked against the registry."""
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown context(s) {unknown}; known: {', '.join(NAMES)}")
    return list(names) or list(NAMES)


def processes(name: str) -> Processes:
    """What the context runs (importing it: a process loads only the contexts it serves)."""
    found = importlib.import_module(f"paycore.{name}.processes").PROCESSES
    assert isinstance(found, Processes)
    return found


def cli(name: str) -> ModuleType | None:
    """The context's command-line module, if it has one (imported lazily by its commands)."""
    if importlib.util.find_spec(f"paycore.{name}.cli") is None:
        return None
    return importlib.import_module(f"paycore.{name}.cli")


def folder(name: str) -> Path:
    """Where the context's package lives."""
    return Path(__file__).resolve().parent / name


def migrations() -> list[Path]:
    """The Alembic versions folder of every context that has tables."""
    return [folder(n) / "migrations" for n in NAMES if (folder(n) / "migrations").is_dir()]


def load_all() -> None:
    """Import every context, so that every table is on the shared metadata (tests, Alembic)."""
    for name in NAMES:
        processes(name)
