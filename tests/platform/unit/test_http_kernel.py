"""HTTP kernel: problem details, correlation ids, probes, and the Idempotency-Key middleware."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Response
from pydantic import BaseModel
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.platform.clock import utcnow
from paycore.platform.errors import DomainError
from paycore.platform.persistence.fencing import effects
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database
from paycore.platform.web.app import PaycoreAPI, create_app, install_probes
from paycore.platform.web.bodies import Input
from paycore.platform.web.claims import idempotency_keys
from paycore.platform.web.fastlane import FastRequest, RawAnswer
from paycore.platform.web.idempotency import IdempotencyMiddleware, caller, request_fingerprint
from paycore.platform.web.problems import Problem
from paycore.platform.web.responses import JSONResponse
from paycore.platform.web.routes import Routes

PROBLEM = "application/problem+json"


class ItemIn(BaseModel):
    name: str
    quantity: int


class Calls:
    def __init__(self) -> None:
        self.items: list[ItemIn] = []
        self.failures = 0


async def _ok() -> None:
    return None


async def _broken() -> None:
    raise ConnectionError("broker unreachable")


def _app(engine: AsyncEngine, calls: Calls) -> FastAPI:
    app = create_app("test", middleware=[(IdempotencyMiddleware, {"db": lambda: Database(engine)})])

    @app.post("/items", status_code=201)
    async def create_item(body: ItemIn) -> Response:
        calls.items.append(body)
        n = len(calls.items)
        return JSONResponse(
            {"n": n, "name": body.name, "price": Decimal("1.10")},
            status_code=201,
            headers={"Location": f"/items/{n}", "X-Internal": "not-kept"},
        )

    @app.post("/notes", status_code=201)
    async def write_note() -> Response:  # a write through the unit of work
        async with Database(engine).transaction() as tx:
            tx.publish("notes", b"a note")
        return JSONResponse({"written": True}, status_code=201)

    @app.post("/flaky")
    async def flaky() -> Response:
        calls.failures += 1
        return JSONResponse({"attempt": calls.failures}, status_code=500)

    @app.post("/locked")
    async def locked() -> Response:
        raise Problem(401, "unauthorized", "A credential is required.")

    @app.post("/crash")
    async def crash() -> Response:
        calls.failures += 1
        raise RuntimeError("bug")

    @app.get("/problem")
    async def problem() -> Response:
        raise Problem(
            409,
            "stock-exhausted",
            "only 2 left",
            headers={"Retry-After": "7"},
            remaining=2,
        )

    @app.get("/money")
    async def money() -> Response:
        return JSONResponse({"value": Decimal("1.10"), "zero": Decimal("0.00")})

    install_probes(app, {"database": _ok, "broker": _ok})
    return app


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def client(engine: AsyncEngine, calls: Calls) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(engine, calls), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].endswith("/" + code)
    assert body["title"]
    assert body["detail"]
    return body


# --- idempotency ---------------------------------------------------------------------------------


async def test_same_key_and_body_replays_the_first_answer(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    headers = {"Idempotency-Key": "key-1"}
    first = await client.post("/items", json={"name": "pen", "quantity": 2}, headers=headers)
    second = await client.post("/items", json={"name": "pen", "quantity": 2}, headers=headers)
    assert len(calls.items) == 1
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.json() == {"n": 1, "name": "pen", "price": 1.1}
    assert b'"price":1.10' in second.content
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.headers["location"] == first.headers["location"] == "/items/1"
    assert second.headers["content-type"] == "application/json"


async def test_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    headers = {"Idempotency-Key": "key-1"}
    await client.post("/items", json={"name": "pen", "quantity": 2}, headers=headers)
    reused = await client.post("/items", json={"name": "pen", "quantity": 3}, headers=headers)
    _problem(reused, 422, "idempotency-key-reused")
    assert len(calls.items) == 1


async def test_a_key_is_the_routes_own(client: httpx.AsyncClient, calls: Calls) -> None:
    """One key on two routes is two keys (a client's keys need only be unique per route)."""
    headers = {"Idempotency-Key": "key-1"}
    await client.post("/items", json={"name": "pen", "quantity": 2}, headers=headers)
    other = await client.post("/flaky", headers=headers)
    assert (other.status_code, calls.failures) == (500, 1)  # it ran
    again = await client.post("/items", json={"name": "pen", "quantity": 3}, headers=headers)
    _problem(again, 422, "idempotency-key-reused")  # on its own route, still one request


async def test_a_refusal_of_the_caller_is_not_kept(client: httpx.AsyncClient) -> None:
    """A 401 (or 403, 429) did nothing: the same key is free for the next try."""
    headers = {"Idempotency-Key": "key-auth"}
    first = await client.post("/locked", headers=headers)
    second = await client.post("/locked", headers=headers)
    assert (first.status_code, second.status_code) == (401, 401)
    assert "idempotent-replayed" not in second.headers


async def test_a_session_is_a_credential_of_its_own(client: httpx.AsyncClient) -> None:
    """An answer made for one session is never replayed to a request without it."""
    headers = {"Idempotency-Key": "key-session"}
    body = {"name": "pen", "quantity": 2}
    with_session = await client.post("/items", json=body, headers={**headers, "Cookie": "s=1"})
    without = await client.post("/items", json=body, headers=headers)
    assert with_session.status_code == without.status_code == 201
    assert "idempotent-replayed" not in without.headers


async def test_without_a_key_every_request_runs(client: httpx.AsyncClient, calls: Calls) -> None:
    for _ in range(3):
        response = await client.post("/items", json={"name": "pen", "quantity": 2})
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers
    assert len(calls.items) == 3


async def test_keys_are_scoped_to_the_caller_credential(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    body = {"name": "pen", "quantity": 2}
    for token in ("Bearer a", "Bearer b", "Bearer a"):
        await client.post(
            "/items", json=body, headers={"Idempotency-Key": "k", "Authorization": token}
        )
    assert len(calls.items) == 2


@pytest.mark.parametrize("key", ["k" * 256, " ", "x" * 1000])
async def test_bad_key_is_a_400(client: httpx.AsyncClient, calls: Calls, key: str) -> None:
    response = await client.post(
        "/items", json={"name": "pen", "quantity": 2}, headers={"Idempotency-Key": key}
    )
    _problem(response, 400, "bad-idempotency-key")
    assert calls.items == []


async def test_key_of_255_characters_is_accepted(client: httpx.AsyncClient, calls: Calls) -> None:
    headers = {"Idempotency-Key": "k" * 255}
    for _ in range(2):
        response = await client.post("/items", json={"name": "a", "quantity": 1}, headers=headers)
        assert response.status_code == 201
    assert len(calls.items) == 1


async def test_a_framework_routes_write_carries_its_keys_effect_row(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    for key in ("note-1", "note-1", "note-2"):
        assert (await client.post("/notes", headers={"Idempotency-Key": key})).status_code == 201
    await client.post("/notes")  # without a key: no effect row
    async with engine.connect() as conn:
        marked = (await conn.execute(select(effects.c.key))).scalars().all()
        notes = await conn.scalar(select(func.count()).where(outbox.c.topic == "notes"))
    assert sorted(marked) == ["note-1", "note-2"]
    assert notes == 3  # the repeat of note-1 was replayed, not run


async def test_a_500_answer_is_not_stored(client: httpx.AsyncClient, calls: Calls) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    first = await client.post("/flaky", headers=headers)
    second = await client.post("/flaky", headers=headers)
    assert (first.status_code, second.status_code) == (500, 500)
    assert second.json() == {"attempt": 2}
    assert "idempotent-replayed" not in second.headers
    assert calls.failures == 2


async def test_a_crash_does_not_store_the_key(client: httpx.AsyncClient, calls: Calls) -> None:
    headers = {"Idempotency-Key": "crash"}
    for _ in range(2):
        response = await client.post("/crash", headers=headers)
        _problem(response, 500, "internal-error")
        assert "idempotent-replayed" not in response.headers
    assert calls.failures == 2


async def test_a_4xx_answer_is_replayed(client: httpx.AsyncClient, calls: Calls) -> None:
    headers = {"Idempotency-Key": "bad-body"}
    first = await client.post("/items", json={"name": "pen"}, headers=headers)
    second = await client.post("/items", json={"name": "pen"}, headers=headers)
    _problem(first, 422, "validation-error")
    _problem(second, 422, "validation-error")
    assert second.headers["idempotent-replayed"] == "true"
    assert second.content == first.content


async def _reserve(engine: AsyncEngine, key: str, body: bytes, lease_left: timedelta) -> None:
    """A key claimed by another request that has not answered yet (no status), whose lease
    runs out in ``lease_left`` (ran out already if negative)."""
    fingerprint = request_fingerprint("POST", "/items", b"", body)
    async with engine.begin() as conn:
        await conn.execute(
            insert(idempotency_keys).values(
                scope=caller({}, "POST", "/items"),
                key=key,
                request_hash=fingerprint,
                owner="another-request",
                lease_until=utcnow() + lease_left,
                created_at=utcnow() - timedelta(seconds=1),
            )
        )


async def test_a_request_still_running_is_a_409_until_its_lease_runs_out(
    client: httpx.AsyncClient, engine: AsyncEngine, calls: Calls
) -> None:
    body = b'{"name":"pen","quantity":1}'
    await _reserve(engine, "busy", body, timedelta(seconds=2.5))
    response = await client.post(
        "/items",
        content=body,
        headers={"Idempotency-Key": "busy", "Content-Type": "application/json"},
    )
    _problem(response, 409, "idempotency-key-in-progress")
    assert response.headers["retry-after"] in ("2", "3")  # the lease's rest, rounded up
    assert calls.items == []


async def test_a_claim_whose_lease_ran_out_is_taken_over(
    client: httpx.AsyncClient, engine: AsyncEngine, calls: Calls
) -> None:
    body = b'{"name":"pen","quantity":1}'
    await _reserve(engine, "stale", body, -timedelta(milliseconds=1))
    headers = {"Idempotency-Key": "stale", "Content-Type": "application/json"}
    first = await client.post("/items", content=body, headers=headers)
    second = await client.post("/items", content=body, headers=headers)
    assert first.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert len(calls.items) == 1


# --- error model ---------------------------------------------------------------------------------


async def test_malformed_json_is_a_400(client: httpx.AsyncClient, calls: Calls) -> None:
    response = await client.post(
        "/items", content=b'{"name": "pen",', headers={"Content-Type": "application/json"}
    )
    body = _problem(response, 400, "malformed-json")
    assert "instance" not in body  # no path named: the client may know another
    assert calls.items == []


async def test_wrong_type_is_a_422_with_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json={"name": "pen", "quantity": "many"})
    body = _problem(response, 422, "validation-error")
    assert body["detail"].startswith("quantity:")
    assert [e["loc"] for e in body["errors"]] == [["body", "quantity"]]
    assert all({"loc", "msg", "type"} <= set(e) for e in body["errors"])


async def test_missing_field_is_a_422(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/items", json={"quantity": 1}), 422, "validation-error")
    assert ["body", "name"] in [e["loc"] for e in body["errors"]]


async def test_unknown_route_is_a_404(client: httpx.AsyncClient) -> None:
    body = _problem(await client.get("/nowhere"), 404, "not-found")
    assert "instance" not in body


async def test_wrong_method_is_a_405(client: httpx.AsyncClient) -> None:
    _problem(await client.delete("/items"), 405, "method-not-allowed")


async def test_a_raised_problem_keeps_status_code_detail_and_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/problem")
    body = _problem(response, 409, "stock-exhausted")
    assert body["detail"] == "only 2 left"
    assert body["remaining"] == 2
    assert "instance" not in body
    assert response.headers["retry-after"] == "7"


async def test_an_unexpected_error_is_a_500_problem(client: httpx.AsyncClient) -> None:
    body = _problem(await client.post("/crash"), 500, "internal-error")
    assert "bug" not in body["detail"]  # internals are not leaked


async def test_decimals_are_exact_json_numbers(client: httpx.AsyncClient) -> None:
    response = await client.get("/money")
    assert response.text == '{"value":1.10,"zero":0.00}'


# --- correlation id -------------------------------------------------------------------------------


async def test_an_incoming_correlation_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/money", headers={"X-Correlation-ID": "req-abc-123"})
    assert response.headers["x-correlation-id"] == "req-abc-123"


async def test_a_correlation_id_is_made_when_missing(client: httpx.AsyncClient) -> None:
    first = await client.get("/money")
    second = await client.get("/money")
    assert uuid.UUID(first.headers["x-correlation-id"]).version == 7
    assert first.headers["x-correlation-id"] != second.headers["x-correlation-id"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/money", {}),
        ("POST", "/items", {"json": {"name": "a", "quantity": 1}}),
        ("GET", "/problem", {}),
        ("GET", "/nowhere", {}),
        ("POST", "/items", {"json": {"name": "a"}}),
        ("POST", "/items", {"content": b"{", "headers": {"Content-Type": "application/json"}}),
        ("GET", "/healthz", {}),
    ],
)
async def test_every_response_carries_the_correlation_id(
    client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    headers = {**kwargs.pop("headers", {}), "X-Correlation-ID": "cid-1"}
    response = await client.request(method, path, headers=headers, **kwargs)
    assert response.headers.get("x-correlation-id") == "cid-1"


async def test_an_unexpected_error_carries_the_correlation_id(client: httpx.AsyncClient) -> None:
    # the answer a user most needs to quote to support
    response = await client.post("/crash", headers={"X-Correlation-ID": "cid-crash"})
    assert response.status_code == 500
    assert response.headers.get("x-correlation-id") == "cid-crash"


async def test_idempotency_answers_carry_the_correlation_id(client: httpx.AsyncClient) -> None:
    body = {"name": "pen", "quantity": 2}
    await client.post("/items", json=body, headers={"Idempotency-Key": "k"})
    replay = await client.post(
        "/items", json=body, headers={"Idempotency-Key": "k", "X-Correlation-ID": "cid-replay"}
    )
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers.get("x-correlation-id") == "cid-replay"
    reused = await client.post(
        "/items",
        json={"name": "other", "quantity": 1},
        headers={"Idempotency-Key": "k", "X-Correlation-ID": "cid-reused"},
    )
    assert reused.status_code == 422
    assert reused.headers.get("x-correlation-id") == "cid-reused"


# --- probes ---------------------------------------------------------------------------------------


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_names_the_failing_check() -> None:
    app = create_app("probe")
    install_probes(app, {"database": _ok, "broker": _broken})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
        health = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "not-ready",
        "checks": {"database": "ok", "broker": "failing: ConnectionError"},
    }
    assert health.status_code == 200  # liveness does not depend on the broker


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/money")
    await client.get("/nowhere")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "paycore_http_requests_total{" in text
    assert 'route="/money"' in text
    assert 'status="404"' in text
    assert "paycore_http_request_seconds_bucket{" in text


class ThingGone(DomainError):
    """The thing named does not exist."""

    code = "thing-gone"
    status = 404


things = Routes("things")


@things.fast("GET", "/things", by_key="key", errors=(ThingGone,), summary="A thing")
async def thing(request: FastRequest) -> RawAnswer:
    if request.key == "missing":
        raise ThingGone(f"thing {request.key!r} is unknown", key=request.key)
    body = b'{"key":"%s"}' % request.key.encode()
    return 200, body, [(b"content-type", b"application/json")]


class Counted(BaseModel):
    count: int


class ThingIn(Input):
    name: str
    quantity: int


@things.fast("POST", "/things", status_code=201, body=ThingIn, response_model=Counted)
async def add_thing(request: FastRequest) -> tuple[int, dict[str, int]]:
    return 201, {"count": len(request.body)}


def _by_key_app(fast_lane: bool = True) -> FastAPI:
    app = served([(things, "")], state={}, fast_lane=fast_lane)
    install_probes(app, {})

    @app.get("/things/{key}/parts")
    async def parts(key: str) -> dict[str, str]:
        return {"parts_of": key}

    return app


async def test_the_fast_lane_serves_a_resource_by_the_last_path_segment() -> None:
    transport = httpx.ASGITransport(app=_by_key_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        found = await http.get("/things/a%20b")
        missing = await http.get("/things/missing")
        nested = await http.get("/things/x/parts")
        bare = await http.get("/things/")
        posted = await http.post("/things/x")
        text = (await http.get("/metrics")).text
    assert found.status_code == 200
    assert found.json() == {"key": "a b"}
    assert found.headers["content-length"] == str(len(found.content))
    assert found.headers["x-correlation-id"]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["detail"] == "thing 'missing' is unknown"
    assert (missing.json()["code"], missing.json()["key"]) == ("thing-gone", "missing")
    assert nested.json() == {"parts_of": "x"}  # deeper paths are the framework's
    assert bare.status_code == 307  # no key: the framework's (it redirects to /things)
    assert posted.status_code == 405  # other methods are the framework's
    assert 'route="/things/{key}"' in text  # the template, not each key
    assert 'route="/things/a b"' not in text


@pytest.mark.parametrize("fast_lane", [True, False])
async def test_a_hot_route_declared_once_is_served_and_documented_either_way(
    fast_lane: bool,
) -> None:
    app = _by_key_app(fast_lane)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        found = await http.get("/things/x")
        missing = await http.get("/things/missing")
        added = await http.post("/things", content=b'{"name":"a","quantity":1}')
        document = (await http.get("/openapi.json")).json()
    assert (found.status_code, found.json()) == (200, {"key": "x"})
    assert (missing.status_code, missing.json()["code"]) == (404, "thing-gone")
    assert (added.status_code, added.json()) == (201, {"count": 25})
    read = document["paths"]["/things/{key}"]["get"]
    assert "`thing-gone`" in read["responses"]["404"]["description"]
    write = document["paths"]["/things"]["post"]
    body_schema = write["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/ThingIn"}
    assert set(document["components"]["schemas"]["ThingIn"]["properties"]) == {"name", "quantity"}
    answer_schema = write["responses"]["201"]["content"]["application/json"]["schema"]
    assert answer_schema["$ref"].endswith("/Counted")
    assert "`body-too-large`" in write["responses"]["413"]["description"]
    assert "`idempotency-key-reused`" in write["responses"]["422"]["description"]


def test_the_app_extends_starlettes_stack_instead_of_replacing_its_entry() -> None:
    """Our layers go in front through ``build_middleware_stack``, Starlette's own hook, so
    Starlette's ``__call__`` (which sets ``scope["app"]`` and builds the stack) still runs."""
    assert "__call__" not in PaycoreAPI.__dict__
    assert "build_middleware_stack" in PaycoreAPI.__dict__


def _echo_app(max_body: int) -> FastAPI:
    app = create_app("limits", max_body=max_body)

    @app.post("/echo")
    async def echo(body: ItemIn) -> dict[str, str]:
        return {"name": body.name}

    return app


async def test_a_body_over_the_limit_is_refused_before_anything_reads_it() -> None:
    app = _echo_app(max_body=64)
    transport = httpx.ASGITransport(app=app)
    big = b'{"name":"' + b"x" * 100 + b'","quantity":1}'
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        json = {"content-type": "application/json"}
        fits = await http.post("/echo", content=b'{"name":"a","quantity":1}', headers=json)
        declared = await http.post("/echo", content=big, headers=json)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed
            for start in range(0, len(big), 16):
                yield big[start : start + 16]

        streamed = await http.post("/echo", content=chunks(), headers=json)
    assert fits.status_code == 200
    _problem(declared, 413, "body-too-large")
    _problem(streamed, 413, "body-too-large")


async def test_a_route_that_takes_no_body_never_runs_for_an_oversized_one() -> None:
    app = create_app("limits", max_body=64)
    purged: list[bool] = []

    @app.post("/purge")
    async def purge() -> dict[str, str]:  # reads no body: the request alone acts
        purged.append(True)
        return {"message": "purged"}

    async def chunks(count: int) -> AsyncIterator[bytes]:  # no Content-Length: streamed
        for _ in range(count):
            yield b"x" * 16

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        refused = await http.post("/purge", content=chunks(100))
        assert purged == []
        fits = await http.post("/purge", content=chunks(2))
    _problem(refused, 413, "body-too-large")
    assert (fits.status_code, purged) == (200, [True])


async def test_the_idempotency_layer_reads_no_more_than_the_limit(engine: AsyncEngine) -> None:
    app = create_app(
        "limits",
        max_body=64,
        middleware=[(IdempotencyMiddleware, {"db": lambda: Database(engine)})],
    )

    @app.post("/echo")
    async def echo() -> dict[str, str]:
        raise AssertionError("never reached")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 16

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.post("/echo", content=chunks(), headers={"Idempotency-Key": "k"})
    _problem(answer, 413, "body-too-large")
