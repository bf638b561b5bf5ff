"""Start paycore's own processes as a user would (``python -m paycore …``) for end-to-end,
chaos tests and benchmarks, and wait until they answer."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


@dataclass
class Proc:
    """One paycore process; ``kill()`` is SIGKILL (chaos), ``stop()`` is a graceful SIGTERM."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 60) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process ends
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "paycore", *self.args],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        if self.ready_url:
            wait_ready(self.ready_url, self, timeout)
        return self

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; returns the exit code (SIGKILL after the timeout). uvicorn
        re-raises the SIGTERM it handled, so a graceful stop exits with -15."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def wait_ready(url: str, proc: Proc | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc and proc.popen and proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.args} exited early:\n{proc.log_tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = proc.log_tail() if proc else ""
    raise RuntimeError(f"{url} not ready after {timeout}s\n{tail}")


def until(check: Callable[[], Any], timeout: float = 60, every: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


SECRETS = {
    "card_keys": "k1:" + base64.b64encode(hashlib.sha256(b"test card key").digest()).decode(),
    "secret_pepper": "test-pepper",
    "service_token": "test-service-token",
}
"""Secrets for deployments under test that do not generate their own (PostgreSQL)."""


def paycore_env(**settings: str | int | Path) -> dict[str, str]:
    """The current environment plus ``PAYCORE_*`` settings (keys without the prefix); the
    data dir, unless given, is the test run's (``tests/conftest.py``), never the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCORE_")}
    if "PAYCORE_DATA_DIR" in os.environ:
        env["PAYCORE_DATA_DIR"] = os.environ["PAYCORE_DATA_DIR"]
    env.update({f"PAYCORE_{k.upper()}": str(v) for k, v in settings.items()})
    env.setdefault("PAYCORE_LOG_LEVEL", "INFO")
    return env


def paycore_process(
    role: str,
    contexts: list[str],
    env: dict[str, str],
    work: Path,
    port: int,
    *,
    root: bool = False,
) -> Proc:
    """``paycore api|worker --context … --port P [--root]``, logging to
    ``work/<role>-<port>.log``, ready when its ``/readyz`` answers (call ``start()``)."""
    args = [role, *(a for c in contexts for a in ("--context", c)), "--port", str(port)]
    return Proc(
        [*args, "--root"] if root else args,
        env,
        work / f"{role}-{port}.log",
        f"http://127.0.0.1:{port}/readyz",
    )


def paycore_run(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``paycore ARGS`` run to its end (two minutes at most): what it did, and how long it took."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "paycore", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.monotonic() - started
