"""What the deployment checks share (``tests/deploy``, ``tests/platform/unit/
test_observability_config.py``): where the deployment files are, the tools that check them
(found in the venv first, then on PATH; a missing one fails the test with its install hint,
never skips it), the series paycore's processes export, and ``paycore`` commands run with
``--help`` through the venv."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from paycore import contexts

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
OBSERVABILITY = DEPLOY / "observability"
RULES = OBSERVABILITY / "rules" / "paycore.rules.yml"
INSTALL_HINT = "run `bash scripts/install-deps` (as root) to install it"

SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def tool(name: str) -> str:
    """The path of a checking tool: the venv's (PyPI wheels) first, then the system's."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return found


def run(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def registered_series() -> set[str]:
    """Every series name a paycore process may expose: the platform's metrics and each
    context's (as ``paycore api`` and ``paycore worker`` load them), and prometheus_client's
    own process and platform collectors."""
    importlib.import_module("paycore.platform.observability.metrics")
    contexts.load_all()
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in SERIES_SUFFIXES.get(family.type, ("",))
    }


_HELP = """
import contextlib, io, json, sys
from paycore.__main__ import app

codes = []
for args in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            app(args=[*args, "--help"], prog_name="paycore")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    codes.append(code)
with open(sys.argv[2], "w") as out:
    json.dump(codes, out)
"""


def help_exit_codes(commands: Sequence[Sequence[str]]) -> dict[tuple[str, ...], int]:
    """Each ``paycore ARGS --help`` run through the venv's Python (one process for all: the
    command line is parsed as the container's entry point parses it, options included), with
    its exit status: 0 for a real command and real options, 2 for an unknown one."""
    unique = sorted({tuple(c) for c in commands})
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        done = subprocess.run(
            [sys.executable, "-c", _HELP, json.dumps(unique), out.name],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        codes = json.loads(Path(out.name).read_text())
    return dict(zip(unique, codes, strict=True))


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
