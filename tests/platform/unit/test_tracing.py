"""W3C trace context: ``traceparent`` parsed (a malformed one ignored), continued by the HTTP
middleware and answered, carried by the events a request or a consumed batch publishes (unit
of work and group commit alike), continued by the consumer from a batch's first message, and
in every log line; finished spans handed to an exporter only when one is installed."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Response
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncEngine
from trace_kit import CALLER, caught_spans, logged, traced

from paycore.platform import observability
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import Consumer, RetryPolicy, Verdicts
from paycore.platform.observability import tracing
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.batch import Batch
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database, Transaction
from paycore.platform.settings import Settings
from paycore.platform.web.app import create_app, install_probes
from paycore.platform.web.fastlane import FastLane, FastRequest, FastRoute
from paycore.platform.web.responses import JSONResponse

TRACE_ID, SPAN_ID = CALLER.trace_id, CALLER.span_id
log = logging.getLogger("test.tracing")

# --- the header -------------------------------------------------------------------------


def test_a_traceparent_is_read_and_written_back_alike() -> None:
    caller = tracing.parse(f"00-{TRACE_ID}-{SPAN_ID}-01")
    assert caller == tracing.TraceContext(TRACE_ID, SPAN_ID, sampled=True)
    assert caller.traceparent == f"00-{TRACE_ID}-{SPAN_ID}-01"
    unsampled = tracing.parse(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert unsampled is not None
    assert (unsampled.sampled, unsampled.traceparent[-2:]) == (False, "00")


def test_only_the_sampled_flag_is_kept_and_a_later_version_is_read_as_far_as_it_is_known() -> None:
    flagged = tracing.parse(f"00-{TRACE_ID}-{SPAN_ID}-03")
    assert flagged is not None
    assert flagged.traceparent.endswith("-01")
    later = tracing.parse(f"01-{TRACE_ID}-{SPAN_ID}-01-what-comes-next")
    assert later == tracing.TraceContext(TRACE_ID, SPAN_ID)
    assert tracing.parse(f" 00-{TRACE_ID}-{SPAN_ID}-01 ") is not None  # whitespace around


MALFORMED = {
    "missing": None,
    "empty": "",
    "not one": "hello",
    "upper-case hex": f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",
    "trace id all zeros": f"00-{'0' * 32}-{SPAN_ID}-01",
    "parent id all zeros": f"00-{TRACE_ID}-{'0' * 16}-01",
    "version ff": f"ff-{TRACE_ID}-{SPAN_ID}-01",
    "version 00 with more after it": f"00-{TRACE_ID}-{SPAN_ID}-01-more",
    "a later version with more not after a dash": f"01-{TRACE_ID}-{SPAN_ID}-01more",
    "short trace id": f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01",
    "long parent id": f"00-{TRACE_ID}-{SPAN_ID}0-01",
    "flags not hex": f"00-{TRACE_ID}-{SPAN_ID}-0g",
    "one-digit version": f"0-{TRACE_ID}-{SPAN_ID}-01",
    "a field missing": f"00-{TRACE_ID}-01",
    "underscores": f"00-{TRACE_ID[:30]}_1-{SPAN_ID}-01",
}


@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_traceparent_is_ignored_and_a_new_trace_started(header: str | None) -> None:
    assert tracing.parse(header) is None
    hop = tracing.continued(header)
    assert hop.trace_id != TRACE_ID
    assert hop.parent_id == ""
    assert hop.sampled  # paycore samples the traces it starts
    assert tracing.parse(hop.traceparent) == tracing.TraceContext(hop.trace_id, hop.span_id)


def test_a_hop_continues_its_callers_trace_with_a_span_of_its_own() -> None:
    hops = [tracing.continued(CALLER.traceparent) for _ in range(3)]
    assert {h.trace_id for h in hops} == {TRACE_ID}
    assert {h.parent_id for h in hops} == {SPAN_ID}
    assert len({h.span_id for h in hops} | {SPAN_ID}) == 4
    unsampled = tracing.continued(f"00-{TRACE_ID}-{SPAN_ID}-00")
    assert not unsampled.sampled  # the caller's choice is kept


def test_new_ids_are_lower_case_hex_of_their_length_and_differ() -> None:
    drawn = [tracing.new_ids() for _ in range(100)]
    traces, spans = {t for t, _ in drawn}, {s for _, s in drawn}
    assert len(traces) == len(spans) == 100
    assert all(len(t) == 32 and int(t, 16) and t == t.lower() for t in traces)
    assert all(len(s) == 16 and int(s, 16) and s == s.lower() for s in spans)


# --- HTTP -------------------------------------------------------------------------------

_notes_metadata = MetaData()
notes = Table("test_trace_notes", _notes_metadata, Column("text", String(50), nullable=False))


async def _fast(request: FastRequest) -> tuple[int, Any]:
    log.info("fast")
    return 200, {"trace": tracing.header()}


def _app(db: Database) -> FastAPI:
    fast = {("GET", "/fast"): FastRoute(_fast, "/fast")}
    app = create_app("test", middleware=[(FastLane, {"routes": fast})])

    @app.get("/hello")
    async def hello() -> Response:
        log.info("hello")
        return JSONResponse({"trace": tracing.header()})

    @app.post("/notes", status_code=201)
    async def write_note() -> Response:
        async with db.transaction() as tx:
            tx.publish("notes", b"a note")
        return JSONResponse({}, status_code=201)

    @app.get("/crash")
    async def crash() -> Response:
        raise RuntimeError("boom")

    install_probes(app, {})

    return app


@pytest.fixture
async def db(engine: AsyncEngine) -> Database:
    async with engine.begin() as conn:
        await conn.run_sync(_notes_metadata.create_all)
    return Database(engine)


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(db), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def answered(response: httpx.Response) -> tracing.TraceContext:
    """The request's span, as the answer names it."""
    found = tracing.parse(response.headers.get(tracing.TRACEPARENT))
    assert found is not None, response.headers
    return found


async def test_a_request_continues_its_callers_trace_and_answers_with_its_own_span(
    client: httpx.AsyncClient,
) -> None:
    with logged("test.tracing", "paycore") as lines:
        response = await client.get("/hello", headers=traced(CALLER))
    mine = answered(response)
    assert mine.trace_id == TRACE_ID
    assert mine.span_id != SPAN_ID
    assert response.json() == {"trace": mine.traceparent}  # current while the route ran
    [line] = lines.saying("hello")
    assert (line["trace_id"], line["span_id"]) == (TRACE_ID, mine.span_id)
    assert tracing.current.get() is None


async def test_a_request_without_a_valid_traceparent_starts_a_trace(
    client: httpx.AsyncClient,
) -> None:
    first = answered(await client.get("/hello"))
    second = answered(await client.get("/hello", headers={"traceparent": "00-nonsense"}))
    assert first.trace_id != second.trace_id
    assert TRACE_ID not in (first.trace_id, second.trace_id)


@pytest.mark.parametrize(
    ("path", "status", "logs"),
    [("/fast", 200, {"fast"}), ("/nowhere", 404, set()), ("/crash", 500, {"unhandled error"})],
)
async def test_every_answer_names_the_requests_span(
    client: httpx.AsyncClient, path: str, status: int, logs: set[str]
) -> None:
    with logged("test.tracing", "paycore") as lines:
        response = await client.get(path, headers=traced(CALLER))
    assert response.status_code == status
    mine = answered(response)
    assert mine.trace_id == TRACE_ID
    assert {line["msg"] for line in lines.lines} == logs
    assert all(
        (line["trace_id"], line["span_id"]) == (TRACE_ID, mine.span_id) for line in lines.lines
    )


async def test_an_event_published_in_a_request_names_the_requests_span_as_its_parent(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await client.post("/notes", headers=traced(CALLER))
    async with engine.connect() as conn:
        [headers] = (await conn.execute(select(outbox.c.headers))).scalars()
    assert orjson.loads(headers)[tracing.TRACEPARENT] == answered(response).traceparent


async def test_spans_are_handed_to_an_exporter_only_once_one_is_installed(
    client: httpx.AsyncClient,
) -> None:
    with caught_spans() as spans:
        response = await client.get("/hello", headers=traced(CALLER))
        await client.get("/crash")
        await client.get("/healthz")  # probes are not exported
    mine = answered(response)
    assert [(s.name, s.kind, s.failed) for s in spans] == [
        ("GET /hello", tracing.SERVER, False),
        ("GET /crash", tracing.SERVER, True),
    ]
    assert spans[0].context == tracing.TraceContext(TRACE_ID, mine.span_id, SPAN_ID)
    assert spans[0].attributes["http.response.status_code"] == 200
    assert 0 < spans[0].end_ns - spans[0].start_ns < 10**9
    await client.get("/hello")
    assert len(spans) == 2  # uninstalled: nothing more


# --- group commit -----------------------------------------------------------------------


async def test_events_written_by_group_commit_carry_the_trace_of_their_own_request(
    db: Database,
) -> None:
    def build(items: Sequence[str], ids: Sequence[int], batch: Batch) -> list[None]:
        batch.add(notes, [{"text": text} for text in items])
        for text in items:
            batch.publish("notes", text.encode(), correlation_id=f"cid-{text}")
        batch.publish("notes", b"of no request")
        return [None] * len(items)

    writer = db.writer(build, tables=[(notes, ("text",))])
    hops = {text: tracing.continued(None) for text in ("a", "b", "c")}

    async def request(text: str) -> None:  # as a request does: its ids, then a submit
        correlation_id.set(f"cid-{text}")
        tracing.current.set(hops[text])
        await writer.submit(text)

    try:
        await asyncio.gather(*(asyncio.create_task(request(text)) for text in hops))
    finally:
        await writer.stop()
    async with db.connect() as conn:
        rows = (await conn.execute(select(outbox.c.body, outbox.c.headers))).all()
    carried = {row.body: orjson.loads(row.headers).get(tracing.TRACEPARENT) for row in rows}
    assert carried.pop(b"of no request") is None
    assert carried == {text.encode(): hop.traceparent for text, hop in hops.items()}


# --- the consumer -----------------------------------------------------------------------


class Handler:
    """Publishes one event per message and notes the trace it ran in; fails on ``boom``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tracing.TraceContext | None]] = []

    async def __call__(self, tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        for delivery in deliveries:
            self.seen.append((delivery.id, tracing.current.get()))
            log.info("handling", extra={"message_id": delivery.id})
            tx.publish("next", delivery.body)
            if delivery.body == b"boom":
                raise RuntimeError("boom")
        return [None] * len(deliveries)


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
def consumer(db: Database, fake_bus: Any, handler: Handler) -> Consumer:
    retry = RetryPolicy(max_attempts=2, base_seconds=0.001, max_seconds=0.002)
    return Consumer(
        subscription=Subscription("notes", "g"), handler=handler, db=db, bus=fake_bus, retry=retry
    )


def delivery(message_id: str, body: bytes = b"ok", parent: str | None = None) -> Delivery:
    headers = {tracing.TRACEPARENT: parent} if parent is not None else {}
    return Delivery("notes", body, message_id, None, headers)


async def published(engine: AsyncEngine) -> dict[bytes, str]:
    """The ``traceparent`` of each event in the outbox, by body."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.body, outbox.c.headers))).all()
    return {row.body: orjson.loads(row.headers)[tracing.TRACEPARENT] for row in rows}


async def test_a_batch_continues_its_first_messages_trace_in_its_logs_and_events(
    consumer: Consumer, handler: Handler, engine: AsyncEngine
) -> None:
    other = tracing.continued(None)
    batch = [
        delivery("m1", b"one", CALLER.traceparent),
        delivery("m2", b"two", other.traceparent),
        delivery("m3", b"three"),
    ]
    with logged("test.tracing", "paycore") as lines, caught_spans() as spans:
        await consumer.handle_batch(batch)
    hops = {trace for _, trace in handler.seen}
    assert len(hops) == 1
    [hop] = hops
    assert hop is not None
    assert (hop.trace_id, hop.parent_id) == (TRACE_ID, SPAN_ID)
    assert hop.span_id not in (SPAN_ID, other.span_id)
    assert set((await published(engine)).values()) == {hop.traceparent}
    assert {(line["trace_id"], line["span_id"]) for line in lines.saying("handling")} == {
        (TRACE_ID, hop.span_id)
    }
    [done] = lines.saying("batch handled")
    assert (done["trace_id"], done["messages"], done["other_traces"]) == (
        TRACE_ID,
        3,
        [other.trace_id],
    )
    [span] = spans
    assert (span.name, span.kind, span.context, span.failed) == (
        "process notes",
        tracing.CONSUMER,
        hop,
        False,
    )
    assert span.links == [tracing.TraceContext(other.trace_id, other.span_id)]
    assert span.attributes["messaging.batch.message_count"] == 3
    assert tracing.current.get() is None


async def test_a_batch_whose_first_message_has_no_trace_starts_one(
    consumer: Consumer, handler: Handler
) -> None:
    await consumer.handle_batch([delivery("m1"), delivery("m2", parent=CALLER.traceparent)])
    await consumer.handle_batch([delivery("m3", parent="00-garbage")])
    [(_, first), (_, second), (_, third)] = handler.seen
    assert first is not None
    assert third is not None
    assert first == second  # one hop
    assert TRACE_ID != first.trace_id != third.trace_id
    assert first.parent_id == third.parent_id == ""


async def test_after_a_failed_batch_each_message_is_handled_in_its_own_trace(
    consumer: Consumer, handler: Handler
) -> None:
    other = tracing.continued(None)
    batch = [delivery("m1", b"boom", CALLER.traceparent), delivery("m2", b"ok", other.traceparent)]
    with caught_spans() as spans:
        await consumer.handle_batch(batch)
    alone = {message_id: trace for message_id, trace in handler.seen[1:]}  # after the batch's
    assert alone["m1"] is not None
    assert alone["m2"] is not None
    assert (alone["m1"].trace_id, alone["m1"].parent_id) == (TRACE_ID, SPAN_ID)
    assert (alone["m2"].trace_id, alone["m2"].parent_id) == (other.trace_id, other.span_id)
    assert [(s.context.trace_id, s.failed) for s in spans] == [
        (TRACE_ID, True),  # m1, dead-lettered after its attempts
        (other.trace_id, False),  # m2, done
        (TRACE_ID, True),  # the batch
    ]


# --- where spans go ---------------------------------------------------------------------


def test_spans_go_to_paycores_endpoint_else_to_opentelemetrys_else_nowhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PAYCORE_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)

    def endpoint() -> str:
        return Settings(_env_file=None).otlp_traces_endpoint  # type: ignore[call-arg]

    assert endpoint() == ""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert endpoint() == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/in")
    assert endpoint() == "http://traces:4318/in"  # the whole URL, as OpenTelemetry reads it
    monkeypatch.setenv("PAYCORE_OTLP_ENDPOINT", "http://paycore:4318")
    assert endpoint() == "http://paycore:4318/v1/traces"


def test_without_the_otel_extra_an_endpoint_is_a_warning_and_nothing_is_exported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # not there: neither a module to import nor (imported by another test) one on the package
    monkeypatch.setitem(sys.modules, "paycore.platform.observability.otel", None)
    monkeypatch.delattr(observability, "otel", raising=False)
    with logged("paycore", level=logging.WARNING) as lines:
        stop = tracing.export_otlp("http://127.0.0.1:9/v1/traces", "paycore-test")
    assert stop is None
    assert tracing.exporter is None
    [warning] = lines.lines
    assert "not installed" in warning["msg"]
