"""The registry of paycore's bounded contexts: one line each.

A context is a package ``paycore.<name>`` holding everything it owns (see
``docs/architecture.md``); this list is the only place outside the contexts' folders that names
them. Processes, the CLI, migrations, the import contracts and the tests find the contexts
here, and each context's parts by convention: ``processes.py`` (``PROCESSES``: what it runs),
``cli.py`` (``register``, ``banner``, ``simulators``: its commands and its part of
``paycore up``, optional), ``migrations/`` (its Alembic branch, optional), and in its
``__init__.py`` its ``LAYERS`` (and ``INDEPENDENT`` sub-packages; ``PURE``: rule-only modules
not named ``domain.py``), from which ``import_contracts`` writes the import-linter contracts.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from paycore.platform.runtime import Processes

NAMES: tuple[str, ...] = (
    "banking",
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


def domain_modules() -> list[str]:
    """Every context's ``domain`` modules, its sub-packages' included, and the modules it
    declares ``PURE``."""
    found = []
    for name in NAMES:
        for path in sorted(folder(name).rglob("domain.py")):
            parts = path.relative_to(folder(name)).with_suffix("").parts
            found.append(".".join(("paycore", name, *parts)))
        pure = getattr(importlib.import_module(f"paycore.{name}"), "PURE", ())
        found += [f"paycore.{name}.{module}" for module in pure]
    return found


DRIVERS = ["sqlite3", "aiosqlite", "asyncpg"]
FRAMEWORKS = [
    "pydantic", "sqlalchemy", "fastapi", "starlette", "httpx", "redis", "nats", "aio_pika",
    "aiokafka", "orjson", "msgspec",
]  # fmt: skip
COMPOSITION = ["paycore.bootstrap", "paycore.contexts", "paycore.schema", "paycore.__main__"]


def import_contracts() -> list[dict[str, Any]]:
    """The import-linter contracts of the architecture, for the registered contexts: contexts
    independent; the platform knows no context; contexts know nothing of how processes are
    composed and import no database driver; only the persistence package does; domain modules
    import no frameworks; and each context's own layers (its ``LAYERS``, ``INDEPENDENT``)."""
    packages = [f"paycore.{name}" for name in NAMES]
    contracts: list[dict[str, Any]] = [
        {"name": "Bounded contexts are independent", "type": "independence", "modules": packages},
        {
            "name": "The platform knows no context and no composition root",
            "type": "forbidden",
            "source_modules": ["paycore.platform"],
            "forbidden_modules": [*packages, *COMPOSITION],
        },
        {
            "name": "Contexts know nothing of how processes are composed",
            "type": "forbidden",
            "source_modules": packages,
            "forbidden_modules": COMPOSITION,
        },
        {
            "name": "Contexts import no database driver: they write through the unit of work",
            "type": "forbidden",
            "source_modules": packages,
            "forbidden_modules": [
                *DRIVERS,
                *(f"paycore.platform.persistence.{m}" for m in ("sqlite_driver", "sqlite_batch")),
                *(f"paycore.platform.persistence.{m}" for m in ("pg_batch", "bulk")),
            ],
            "allow_indirect_imports": True,
        },
        {
            "name": "Only the persistence package talks to database drivers",
            "type": "forbidden",
            "source_modules": [
                *(f"paycore.platform.{m}" for m in ("messaging", "web", "observability")),
                *(f"paycore.platform.{m}" for m in ("runtime", "settings", "cards", "errors")),
                *COMPOSITION,
            ],
            "forbidden_modules": DRIVERS,
            "allow_indirect_imports": True,
        },
        {
            "name": "The persistence package uses messaging's contract only",
            "type": "forbidden",
            "source_modules": ["paycore.platform.persistence"],
            "forbidden_modules": [
                f"paycore.platform.messaging.{m}"
                for m in ("brokers", "consumer", "deadletters", "relay", "embedded")
            ],
        },
        {
            "name": "Domain modules import no frameworks",
            "type": "forbidden",
            "source_modules": domain_modules(),
            "forbidden_modules": FRAMEWORKS,
        },
    ]
    for name, package in zip(NAMES, packages, strict=True):
        declared = importlib.import_module(package)
        contracts.append(
            {
                "name": f"{name}: layers point inward",
                "type": "layers",
                "containers": [package],
                "layers": list(declared.LAYERS),
            }
        )
        if independent := getattr(declared, "INDEPENDENT", ()):
            contracts.append(
                {
                    "name": f"{name}: {', '.join(independent)} are independent",
                    "type": "independence",
                    "modules": [f"{package}.{sub}" for sub in independent],
                }
            )
    return contracts
