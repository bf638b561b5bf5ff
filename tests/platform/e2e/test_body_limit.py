"""The body limit as an attacker meets it: `paycore api` (every context) started as a user
starts it, and 300 MB sent, unauthenticated, to every route that takes a body — each one found
in the app's own route table — with and without an ``Idempotency-Key``, declared by
``Content-Length`` and chunked without one. Each is answered 413 before anything reads the
body, and the API's memory barely moves: its resident size and its peak (``VmHWM``, which a
body held for a moment would raise) from ``/proc``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huge_body import send
from procs import Proc, paycore_env, paycore_process
from servers import Server, free_port

from paycore.schema import upgrade

HUGE = 300 * 1000 * 1000
GROWTH = 20 * 1024  # kB: what the API may grow by over the whole run
BODIES = ("POST", "PUT", "PATCH")
ROUTES = """
import json
from fastapi.routing import iter_route_contexts
from starlette.testclient import TestClient
from paycore.bootstrap import build_api
from paycore.platform.cli import load_settings

app = build_api(load_settings())
with TestClient(app):  # its lifespan mounts every context's routes
    routes = [(m, r.path) for r in iter_route_contexts(app.routes) for m in r.methods or ()]
print(json.dumps(routes))
"""


@pytest.fixture
def api(tmp_path: Path, nats_server: Server) -> Iterator[tuple[Proc, int, dict[str, str]]]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'paycore.db'}"
    upgrade(database)
    port = free_port()
    env = paycore_env(database_url=database, broker_url=nats_server.url, data_dir=tmp_path)
    proc = paycore_process("api", [], env, tmp_path, port).start()
    try:
        yield proc, port, env
    finally:
        proc.stop()


def _routes_taking_a_body(env: dict[str, str]) -> list[tuple[str, str]]:
    """Every (method, path) the API serves for a method with a body, from its app's route
    table (built as the API process builds it), path parameters filled in."""
    listed = subprocess.run(
        [sys.executable, "-c", ROUTES], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    routes: list[tuple[str, str]] = json.loads(listed.stdout)
    return sorted(
        {(m, path.replace("{", "").replace("}", "")) for m, path in routes if m in BODIES}
    )


def _memory(proc: Proc) -> dict[str, int]:
    """The process's resident size now and at its peak, in kB."""
    assert proc.popen is not None
    status = Path(f"/proc/{proc.popen.pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def test_every_route_refuses_300_mb_before_reading_it(api: Any) -> None:
    proc, port, env = api
    routes = _routes_taking_a_body(env)
    hot = ["/commerce/orders", "/gateway/transactions", "/payments/payments", "/fulfillment/orders"]
    assert {("POST", path) for path in hot} <= set(routes)
    before = _memory(proc)
    answers: dict[str, int | None] = {}
    for method, path in routes:
        for chunked in (False, True):
            for key in ({}, {"Idempotency-Key": f"huge-{path}-{chunked}"}):
                framing = "chunked" if chunked else "Content-Length"
                what = f"{method} {path} ({framing}, {'with' if key else 'no'} key)"
                answers[what] = send(port, method, path, HUGE, chunked=chunked, headers=key)
    after = _memory(proc)
    assert {what: status for what, status in answers.items() if status != 413} == {}
    growth = {name: after[name] - before[name] for name in after}
    assert all(grown < GROWTH for grown in growth.values()), (before, after)
