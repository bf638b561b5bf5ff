"""Who dispatches payments is set once per deployment: with ``accept=local`` the API instances
do, so a payments worker refuses to start (two dispatchers of one payment could pin it to two
processors), an instance needs a name that fits its lease and its payments' owner, and its
siblings' databases must be there and migrated; a journal is only for instances that
record their payments."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI

from paycore.payments import processes
from paycore.payments.settings import PaymentsSettings
from paycore.platform.failures import OperatorError


async def test_a_worker_refuses_to_start_where_the_apis_dispatch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYCORE_PAYMENTS_ACCEPT", "local")
    runtime: Any = object()  # never reached
    with pytest.raises(OperatorError, match="run no payments worker"):
        await processes.start_worker(FastAPI(), runtime)


async def test_a_journal_without_local_accept_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYCORE_PAYMENTS_ACCEPT", "broker")
    monkeypatch.setenv("PAYCORE_PAYMENTS_JOURNAL", str(tmp_path / "journal"))
    runtime: Any = object()  # never reached
    with pytest.raises(OperatorError, match="PAYCORE_PAYMENTS_JOURNAL is for"):
        await processes.mount_api(FastAPI(), runtime, "", {})
    assert not (tmp_path / "journal").exists()


async def test_an_instance_named_after_a_long_host_name_is_told_to_set_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYCORE_PAYMENTS_ACCEPT", "local")
    monkeypatch.setattr(processes.socket, "gethostname", lambda: "h" * 60)
    runtime: Any = object()
    with pytest.raises(OperatorError, match="PAYCORE_PAYMENTS_INSTANCE"):
        await processes.mount_api(FastAPI(), runtime, "", {})


async def test_a_sibling_database_not_migrated_stops_the_instance_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "payments-api2.db"
    monkeypatch.setenv("PAYCORE_PAYMENTS_SIBLINGS", f"sqlite+aiosqlite:///{missing}")
    runtime: Any = SimpleNamespace(closers=[])
    with pytest.raises(OperatorError, match=r"payments-api2\.db has no paycore tables") as caught:
        await processes._siblings(runtime, PaymentsSettings())
    assert "paycore migrate" in str(caught.value)
    assert not missing.exists()  # not created by the check
    assert runtime.closers == []


def test_siblings_must_be_database_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYCORE_PAYMENTS_SIBLINGS", "sqlite+aiosqlite:///a.db, /data/b.db")
    with pytest.raises(ValueError, match=r"'/data/b\.db': each sibling must be a database URL"):
        PaymentsSettings()
    monkeypatch.setenv("PAYCORE_PAYMENTS_SIBLINGS", " sqlite+aiosqlite:///a.db , ")
    assert PaymentsSettings().sibling_urls == ["sqlite+aiosqlite:///a.db"]
