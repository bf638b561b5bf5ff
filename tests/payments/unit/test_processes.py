"""Who dispatches payments is set once per deployment: with ``accept=local`` the API instances
do, so a payments worker refuses to start (two dispatchers of one payment could pin it to two
processors), and an instance needs a name that fits its lease and its payments' owner."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from paycore.payments import processes
from paycore.platform.failures import OperatorError


async def test_a_worker_refuses_to_start_where_the_apis_dispatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYCORE_PAYMENTS_ACCEPT", "local")
    runtime: Any = object()  # never reached
    with pytest.raises(OperatorError, match="run no payments worker"):
        await processes.start_worker(FastAPI(), runtime)


async def test_an_instance_named_after_a_long_host_name_is_told_to_set_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYCORE_PAYMENTS_ACCEPT", "local")
    monkeypatch.setattr(processes.socket, "gethostname", lambda: "h" * 60)
    runtime: Any = object()
    with pytest.raises(OperatorError, match="PAYCORE_PAYMENTS_INSTANCE"):
        await processes.mount_api(FastAPI(), runtime, "", {})
