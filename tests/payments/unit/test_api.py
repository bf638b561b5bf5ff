"""The payments purge (issue 22, item 14): it erases every payment, so outside the contest's
deployment it needs the operator's admin token; the contest's deployment opens it
(``PAYCORE_PAYMENTS_OPEN_PURGE``), as its test requires. A refused purge erases nothing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.payments import api as payments_api
from paycore.payments import service, store
from paycore.payments.domain import Payment
from paycore.payments.settings import PaymentsSettings
from paycore.platform.observability import tracing
from paycore.platform.persistence.uow import Database

ADMIN = "payments-admin-token"
PATHS = ["/purge-payments", "/payments-purge"]


def client(engine: AsyncEngine, bus: Any, *, admin_token: str, open_purge: bool) -> Any:
    state = payments_api.PaymentsApi(
        service.Databases(Database(engine)),
        functools.partial(service.accept, bus),
        admin_token=admin_token,
        open_purge=open_purge,
    )
    app = served([(payments_api.routes, "")], state={"payments": state})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pay")


async def stored(engine: AsyncEngine) -> None:
    """Two payments in the table, as the worker records them."""
    ids = [f"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60{n:02d}" for n in (1, 2)]
    received = [(Payment(i, 1990), 0) for i in ids]
    async with Database(engine).transaction() as tx:
        await store.insert_received(tx, received)


@pytest.mark.parametrize("path", PATHS)
async def test_the_purge_needs_the_admin_token(
    engine: AsyncEngine, fake_bus: Any, path: str, count_rows: Callable[..., Awaitable[int]]
) -> None:
    await stored(engine)
    async with client(engine, fake_bus, admin_token=ADMIN, open_purge=False) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Rinha-Token": ADMIN}):
            refused = await http.post(path, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.json()["code"] == "unauthorized"
            assert refused.headers["www-authenticate"] == "Bearer"
        assert await count_rows(store.payments) == 2  # nothing erased
        done = await http.post(path, headers={"Authorization": f"Bearer {ADMIN}"})
        assert done.status_code == 200
    assert await count_rows(store.payments) == 0


async def test_without_an_admin_token_the_purge_is_off(
    engine: AsyncEngine, fake_bus: Any, count_rows: Callable[..., Awaitable[int]]
) -> None:
    await stored(engine)
    async with client(engine, fake_bus, admin_token="", open_purge=False) as http:
        for path in PATHS:
            answer = await http.post(path, headers={"Authorization": "Bearer "})
            assert (answer.status_code, answer.json()["code"]) == (503, "admin-disabled")
            assert "PAYCORE_ADMIN_TOKEN" in answer.json()["detail"]
    assert await count_rows(store.payments) == 2


async def test_the_contest_deployment_opens_it(
    engine: AsyncEngine, fake_bus: Any, count_rows: Callable[..., Awaitable[int]]
) -> None:
    await stored(engine)
    async with client(engine, fake_bus, admin_token="", open_purge=True) as http:
        assert (await http.post("/purge-payments")).status_code == 200
    assert await count_rows(store.payments) == 0


def test_the_purge_is_closed_unless_the_setting_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PaymentsSettings(_env_file=None).open_purge is False  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_PAYMENTS_OPEN_PURGE", "true")
    assert PaymentsSettings(_env_file=None).open_purge is True  # type: ignore[call-arg]


async def test_the_document_lists_what_the_purge_may_answer(
    engine: AsyncEngine, fake_bus: Any
) -> None:
    async with client(engine, fake_bus, admin_token=ADMIN, open_purge=False) as http:
        document = (await http.get("/openapi.json")).json()
    responses = document["paths"]["/purge-payments"]["post"]["responses"]
    assert "`unauthorized`" in responses["401"]["description"]
    assert "`admin-disabled`" in responses["503"]["description"]


async def test_an_accepted_payment_carries_the_requests_trace_to_the_worker(
    engine: AsyncEngine, fake_bus: Any
) -> None:
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with client(engine, fake_bus, admin_token=ADMIN, open_purge=False) as http:
        answer = await http.post(
            "/payments",
            json={"correlationId": "4a7901b8-7d26-4d9d-aa19-4dc1c7cf6099", "amount": 19.90},
            headers={"traceparent": caller},
        )
        untraced = await http.post(
            "/payments",
            json={"correlationId": "4a7901b8-7d26-4d9d-aa19-4dc1c7cf6098", "amount": 19.90},
        )
    assert (answer.status_code, untraced.status_code) == (202, 202)
    traced, fresh = fake_bus.published
    sent = tracing.parse(traced.headers[tracing.TRACEPARENT])
    assert sent is not None
    assert sent.trace_id == "0af7651916cd43dd8448eb211c80319c"  # the caller's trace
    assert sent.span_id != "b7ad6b7169203331"  # the request's own span, parent of the worker's
    assert tracing.parse(fresh.headers[tracing.TRACEPARENT]) is not None  # a trace of its own
