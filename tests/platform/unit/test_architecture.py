"""The shape the architecture promises: outside the contexts' own folders and the registry, no
module names a context; every registered context has the parts the registry expects; the import
contracts cover every context."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from paycore import contexts
from paycore.platform.runtime import Processes

SOURCE = Path(contexts.__file__).resolve().parent
NAMES = "|".join(contexts.NAMES)
NAMING = re.compile(
    rf"paycore\.({NAMES})\b"  # an import or a module path
    rf"|[\"'/]({NAMES})[\"'/]"  # a string or a route naming one: "gateway", "/payments/"
    rf"|PAYCORE_({NAMES.upper()})_",  # one of its settings
)


def outside_the_contexts() -> list[Path]:
    return [
        path
        for path in SOURCE.rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".toml", ".mako", ".html", ".js", ".css")
        and path.relative_to(SOURCE).parts[0] not in contexts.NAMES
        and path.name != "contexts.py"
    ]


def test_nothing_outside_the_contexts_and_the_registry_names_a_context() -> None:
    found = [
        f"{path.relative_to(SOURCE)}:{number}: {line.strip()}"
        for path in outside_the_contexts()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if NAMING.search(line)
    ]
    assert outside_the_contexts()  # the check looks at something
    assert found == []


def test_the_check_would_see_a_context_named() -> None:
    for line in ("from paycore.gateway import api", 'prefix = "/payments/"', "PAYCORE_COMMERCE_X"):
        assert NAMING.search(line), line


@pytest.mark.parametrize("name", contexts.NAMES)
def test_every_registered_context_has_what_the_registry_expects(name: str) -> None:
    parts = contexts.processes(name)
    assert isinstance(parts, Processes)
    assert parts.api is not None or parts.worker is not None
    for settings in parts.settings:
        assert settings.model_config.get("env_prefix") == f"PAYCORE_{name.upper()}_"
    package = importlib.import_module(f"paycore.{name}")
    assert package.LAYERS[-1]  # its layers, innermost last
    assert (contexts.folder(name) / "migrations") in contexts.migrations()


def test_the_import_contracts_cover_every_context() -> None:
    contracts = contexts.import_contracts()
    layered = {c["containers"][0] for c in contracts if c["type"] == "layers"}
    assert layered == {f"paycore.{name}" for name in contexts.NAMES}
    [independent] = [c for c in contracts if c["name"] == "Bounded contexts are independent"]
    assert independent["modules"] == [f"paycore.{name}" for name in contexts.NAMES]
