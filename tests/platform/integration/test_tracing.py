"""One trace from an HTTP request to the consumer of the event it caused, through a real broker:
an order placed with commerce's API (its group commit, the outbox, the relay, NATS JetStream)
and handled by its analytics worker, both as ``paycore api`` and ``paycore worker`` build them,
in this process, on SQLite. The worker's log line for the batch carries the caller's trace id;
with the ``otel`` extra and an OTLP endpoint, the request's and the batch's spans reach a local
OTLP/HTTP receiver with the ids that travelled."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import Server
from trace_kit import CALLER, Lines, OtlpReceiver, logged, traced
from web_kit import migrated_settings

from paycore.bootstrap import build_api, build_worker
from paycore.commerce.messages import ORDER_CREATED
from paycore.platform.observability import tracing
from paycore.platform.settings import Settings


@contextlib.asynccontextmanager
async def commerce(settings: Settings, api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Commerce's worker and API (with ``api_settings``) started; a client of the API."""
    worker, api = build_worker(settings, ["commerce"]), build_api(api_settings, ["commerce"])
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(worker.router.lifespan_context(worker))
        await stack.enter_async_context(api.router.lifespan_context(api))
        transport = httpx.ASGITransport(app=api)
        http = httpx.AsyncClient(transport=transport, base_url="http://paycore", timeout=30)
        yield await stack.enter_async_context(http)


async def place_order(http: httpx.AsyncClient) -> tracing.TraceContext:
    """An order placed in the trace of ``CALLER``; the request's span, as the answer names it."""
    customer = {"email": "ana@example.com", "username": "ana"}
    assert (await http.post("/commerce/customers", json=customer)).status_code == 201
    product = {"name": "caneta", "value": 2.50}
    assert (await http.post("/commerce/products", json=product)).status_code == 201
    order = {"email": "ana@example.com", "products": [{"name": "caneta", "quantity": 2}]}
    answer = await http.post("/commerce/orders", json=order, headers=traced(CALLER))
    assert answer.status_code == 201, answer.text
    request = tracing.parse(answer.headers.get(tracing.TRACEPARENT))
    assert request is not None
    return request


async def handled(lines: Lines, trace_id: str, timeout: float = 30) -> dict[str, Any]:
    """The worker's line for the batch of order events in the trace ``trace_id``."""
    deadline = time.monotonic() + timeout
    while True:
        for line in lines.saying("batch handled"):
            if (line["topic"], line.get("trace_id")) == (ORDER_CREATED, trace_id):
                return line
        assert time.monotonic() < deadline, lines.saying("batch handled")
        await asyncio.sleep(0.05)


@pytest.fixture
def settings(tmp_path: Path, nats_server: Server) -> Settings:
    return migrated_settings(tmp_path, nats_server.url)


async def test_one_trace_id_goes_from_a_post_to_the_consumers_log_line(
    settings: Settings,
) -> None:
    with logged("paycore") as lines:
        async with commerce(settings, settings) as http:
            request = await place_order(http)
            line = await handled(lines, CALLER.trace_id)
    assert request.trace_id == CALLER.trace_id
    assert len({CALLER.span_id, request.span_id, line["span_id"]}) == 3  # a span per hop


async def test_the_spans_of_the_request_and_of_the_batch_are_exported_over_otlp(
    settings: Settings,
) -> None:
    pytest.importorskip(
        "opentelemetry.sdk", reason="the otel extra is not installed: spans cannot be exported"
    )
    with OtlpReceiver() as receiver, logged("paycore") as lines:
        # one exporter per process: installed by the API's runtime here, the worker's batches
        # in this process are exported through it too
        api_settings = settings.model_copy(update={"otlp_endpoint": receiver.endpoint})
        async with commerce(settings, api_settings) as http:
            request = await place_order(http)
            line = await handled(lines, CALLER.trace_id)
        # closing the API flushed its exporter
    assert tracing.exporter is None
    assert {path for path, _ in receiver.posted} == {"/v1/traces"}
    spans = {s.name: s for s in receiver.spans() if s.trace_id == CALLER.trace_id}
    server, batch = spans["POST /commerce/orders"], spans[f"process {ORDER_CREATED}"]
    assert (server.kind, server.span_id, server.parent_id) == (
        "SPAN_KIND_SERVER",
        request.span_id,
        CALLER.span_id,
    )
    assert server.attributes["http.response.status_code"] == 201
    assert server.service == "paycore-api"
    assert (batch.kind, batch.span_id, batch.parent_id) == (
        "SPAN_KIND_CONSUMER",
        line["span_id"],
        request.span_id,  # the event carried the request's span as its parent
    )
    assert (server.failed, batch.failed) == (False, False)
