"""What each entry point installs: ``make up`` what running paycore needs, ``make test`` the
development tools too; and running paycore imports none of those tools."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def planned(target: str, venv: Path) -> str:
    """The commands ``make target`` would run for a virtualenv not made yet."""
    return subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_up_installs_paycore_without_the_development_tools(tmp_path: Path) -> None:
    up = planned("up", tmp_path / "venv")
    assert re.search(r"pip install -q -e \.$", up, re.MULTILINE), up
    assert "[dev]" not in up
    assert "'.[dev]'" in planned("test", tmp_path / "venv")


def development_modules() -> set[str]:
    """The top-level modules of the distributions in the ``dev`` extra."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in extra["optional-dependencies"]["dev"]
    }
    return {
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in names for d in distributions)
    }


IMPORT_EVERYTHING = """
import importlib, pkgutil, sys
import paycore
for found in pkgutil.walk_packages(paycore.__path__, "paycore."):
    if ".migrations" not in found.name and ".alembic" not in found.name:
        importlib.import_module(found.name)
print("\\n".join(sys.modules))
"""


def test_running_paycore_imports_no_development_tool() -> None:
    tools = development_modules()
    assert {"pytest", "ruff", "mypy", "yaml", "playwright"} <= tools  # the check sees them
    loaded = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "paycore.__main__" in loaded
    assert sorted({m.split(".")[0] for m in loaded} & tools) == []
