"""What each entry point installs: ``make up`` what running paycore needs, ``make test`` the
development tools and the optional extras too; and running paycore imports none of those tools,
nor the OpenTelemetry SDK unless spans are exported."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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
    assert "[dev" not in up
    assert "'.[dev,otel]'" in planned("test", tmp_path / "venv")


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


OTEL_BRIDGE = "paycore.platform.observability.otel"
IMPORT_EVERYTHING = f"""
import importlib, pkgutil, sys
import paycore
for found in pkgutil.walk_packages(paycore.__path__, "paycore."):
    if ".migrations" not in found.name and ".alembic" not in found.name:
        if found.name != "{OTEL_BRIDGE}":  # imported only when spans are exported
            importlib.import_module(found.name)
print("\\n".join(sys.modules))
print("--- the bridge")
try:
    importlib.import_module("{OTEL_BRIDGE}")
except ImportError:
    pass
else:
    print("\\n".join(sys.modules))
"""
OTEL_EXPORT = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.proto")
"""What the bridge imports of the ``otel`` extra to export spans. (``opentelemetry`` itself is
FastAPI's; and redis-py imports the SDK's metrics package whenever the SDK is installed.)"""


@pytest.fixture(scope="module")
def loaded() -> tuple[list[str], list[str]]:
    """The modules every paycore module imports (the OpenTelemetry bridge aside), and those
    the bridge adds (nothing if the ``otel`` extra is not installed)."""
    printed = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    everything, _, bridged = printed.partition("--- the bridge")
    return everything.split(), bridged.split()


def test_running_paycore_imports_no_development_tool(loaded: tuple[list[str], list[str]]) -> None:
    tools = development_modules()
    assert {"pytest", "ruff", "mypy", "yaml", "playwright"} <= tools  # the check sees them
    modules, _ = loaded
    assert "paycore.__main__" in modules
    assert sorted({m.split(".")[0] for m in modules} & tools) == []


def test_only_the_bridge_imports_what_exports_spans(loaded: tuple[list[str], list[str]]) -> None:
    modules, bridged = loaded
    assert OTEL_BRIDGE not in modules
    assert [m for m in modules if m.startswith(OTEL_EXPORT)] == []
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        pytest.skip("the otel extra is not installed: what the bridge imports cannot be seen")
    assert {prefix for prefix in OTEL_EXPORT for m in bridged if m.startswith(prefix)} == set(
        OTEL_EXPORT
    )  # the check sees them
