"""The commerce HTTP API as a user sees it, with the internal analytics service behind it
(both served in process through ASGI transports)."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.commerce import messages
from paycore.commerce.analytics import api as analytics_api
from paycore.commerce.analytics import service as analytics_service
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import MemoryBoard
from paycore.commerce.domain import Order, OrderLine
from paycore.commerce.orders import api as commerce_api
from paycore.commerce.orders import service as order_service
from paycore.commerce.orders import store as order_store
from paycore.commerce.orders.client import AnalyticsClient
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import Consumer, Verdicts
from paycore.platform.messaging.relay import Relay
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.batch import GroupWriter
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database, Transaction

TOKEN = "tok-12345678"
PROBLEM = "application/problem+json"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def board() -> MemoryBoard:
    return MemoryBoard()


@pytest.fixture
def archive(tmp_path: Any) -> Archive:
    return Archive(tmp_path / "archive")


@pytest.fixture
def analytics_app(db: Database, board: MemoryBoard, archive: Archive) -> FastAPI:
    """The analytics service as the worker process serves it."""
    return served(
        [(analytics_api.routes, "")],
        state={"analytics": analytics_api.AnalyticsApi(db, board, archive, TOKEN)},
        middleware=[(analytics_api.RefuseBrowserOrigins, {})],
    )


async def _client_on(transport: httpx.AsyncBaseTransport) -> AnalyticsClient:
    client = AnalyticsClient("http://analytics", TOKEN)
    await client._client.aclose()
    client._client = httpx.AsyncClient(
        transport=transport,
        base_url="http://analytics",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    return client


@pytest.fixture
def relay(engine: AsyncEngine, fake_bus: Any) -> Relay:
    return Relay(engine, fake_bus)


@pytest.fixture
def db(engine: AsyncEngine, relay: Relay) -> Database:
    """The database as the API process has it: committed events are handed to the relay."""
    return Database(engine, relay.handoff)


@pytest.fixture
async def orders(db: Database) -> AsyncIterator[GroupWriter[Any, Order]]:
    """The order writer, wired as the API process wires it."""
    group = order_service.order_writer(db)
    yield group
    await group.stop()


async def _public_api(
    db: Database,
    orders: GroupWriter[Any, Order],
    analytics: AnalyticsClient,
    *,
    fast_lane: bool = True,
) -> httpx.AsyncClient:
    """The public API wired as the API process wires it; without the fast lane the order
    routes are served by the framework route that documents them."""
    wired = commerce_api.OrdersApi(db, order_store.Catalog(db.connect), orders, analytics)
    app = served(
        [(commerce_api.routes, "/commerce")], state={"commerce": wired}, fast_lane=fast_lane
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture(params=["fast-lane", "framework-route"])
async def api(
    request: pytest.FixtureRequest,
    db: Database,
    orders: GroupWriter[Any, Order],
    analytics_app: FastAPI,
) -> AsyncIterator[httpx.AsyncClient]:
    analytics = await _client_on(httpx.ASGITransport(app=analytics_app))
    fast = request.param == "fast-lane"
    async with await _public_api(db, orders, analytics, fast_lane=fast) as client:
        yield client
    await analytics.close()


@pytest.fixture
async def internal(analytics_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A caller of the analytics service itself (no credential unless the test adds one)."""
    transport = httpx.ASGITransport(app=analytics_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        yield client


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["detail"]
    return body


def _exact(response: httpx.Response) -> Any:
    """The JSON body with numbers as exact Decimals (never floats)."""
    return json.loads(response.text, parse_float=Decimal)


async def _post_raw(api: httpx.AsyncClient, path: str, text: str) -> httpx.Response:
    return await api.post(path, content=text.encode(), headers={"Content-Type": "application/json"})


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _shop(api: httpx.AsyncClient) -> None:
    """A customer and three products, priced as exact decimals in raw JSON."""
    response = await api.post(
        "/commerce/customers", json={"email": "alice@example.com", "username": "alice"}
    )
    assert response.status_code == 201, response.text
    for name, value in [("lápis", "1.10"), ("caderno", "1.00"), ("clipe", "0.10")]:
        text = json.dumps({"name": name, "value": "VALUE"}).replace('"VALUE"', value)
        response = await _post_raw(api, "/commerce/products", text)
        assert response.status_code == 201, response.text


# --- customers ---------------------------------------------------------------------------------


async def test_create_customer(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/commerce/customers", json={"email": "Alice@Example.COM", "username": "alice"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "username", "createdAt"}
    assert body["email"] == "alice@example.com"
    assert body["username"] == "alice"
    assert isinstance(body["id"], int)
    assert ISO_MS.match(body["createdAt"])
    fetched = await api.get(f"/commerce/customers/{body['id']}")
    assert fetched.json() == body


async def test_create_customer_seed_alias(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/commerce/create/customer", json={"email": "bob@example.com", "username": "bob"}
    )
    assert response.status_code == 201
    assert response.json()["email"] == "bob@example.com"
    again = await api.post(
        "/commerce/customers", json={"email": "bob@example.com", "username": "bobby"}
    )
    _problem(again, 409, "conflict")


@pytest.mark.parametrize("email", ["not-an-email", "alice@", "@example.com", "", "a b@example.com"])
async def test_invalid_email_is_a_422(
    api: httpx.AsyncClient, engine: AsyncEngine, email: str
) -> None:
    response = await api.post("/commerce/customers", json={"email": email, "username": "alice"})
    body = _problem(response, 422, "validation-error")
    assert ["body", "email"] in [e["loc"] for e in body["errors"]]
    assert await _count(engine, order_store.customers) == 0


async def test_duplicate_customer_is_a_409(api: httpx.AsyncClient) -> None:
    await api.post("/commerce/customers", json={"email": "alice@example.com", "username": "alice"})
    same_email = await api.post(
        "/commerce/customers", json={"email": "ALICE@example.com", "username": "other"}
    )
    assert "email" in _problem(same_email, 409, "conflict")["detail"]
    same_username = await api.post(
        "/commerce/customers", json={"email": "other@example.com", "username": "alice"}
    )
    assert "username" in _problem(same_username, 409, "conflict")["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "alice@example.com"},
        {"email": "alice@example.com", "username": ""},
        {"email": "alice@example.com", "username": "   "},
        {"email": "alice@example.com", "username": "alice", "admin": True},
    ],
)
async def test_bad_customer_bodies_are_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    _problem(await api.post("/commerce/customers", json=body), 422, "validation-error")


async def test_unknown_customer_is_a_404(api: httpx.AsyncClient) -> None:
    _problem(await api.get("/commerce/customers/999"), 404, "not-found")


# --- products ----------------------------------------------------------------------------------


async def test_product_value_is_an_exact_json_number(api: httpx.AsyncClient) -> None:
    response = await _post_raw(api, "/commerce/products", '{"name":"lápis","value":1.10}')
    assert response.status_code == 201
    assert '"value":1.10' in response.text
    body = _exact(response)
    assert body["value"] == Decimal("1.10")
    assert isinstance(body["value"], Decimal)  # a number, not a string
    assert body["name"] == "lápis"

    alias = await _post_raw(api, "/commerce/create/product", '{"name":"caderno","value":31.5}')
    assert alias.status_code == 201
    assert '"value":31.50' in alias.text

    listed = await api.get("/commerce/products")
    assert listed.status_code == 200
    assert [(p["name"], p["value"]) for p in _exact(listed)] == [
        ("lápis", Decimal("1.10")),
        ("caderno", Decimal("31.50")),
    ]
    assert '"value":1.10' in listed.text


@pytest.mark.parametrize("value", ["1.005", "0", "0.00", "-1", "-0.01", "0.001", '"abc"', "null"])
async def test_invalid_product_value_is_a_422(
    api: httpx.AsyncClient, engine: AsyncEngine, value: str
) -> None:
    response = await _post_raw(api, "/commerce/products", '{"name":"pen","value":' + value + "}")
    _problem(response, 422, "validation-error")
    assert await _count(engine, order_store.products) == 0


async def test_duplicate_product_is_a_409(api: httpx.AsyncClient) -> None:
    await _post_raw(api, "/commerce/products", '{"name":"pen","value":1.50}')
    again = await _post_raw(api, "/commerce/products", '{"name":"pen","value":2.00}')
    _problem(again, 409, "conflict")


async def test_extra_product_fields_are_a_422(api: httpx.AsyncClient) -> None:
    response = await _post_raw(api, "/commerce/products", '{"name":"pen","value":1.50,"x":1}')
    _problem(response, 422, "validation-error")


# --- orders ------------------------------------------------------------------------------------


async def test_create_order_total_is_exact(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await _shop(api)
    response = await api.post(
        "/commerce/orders",
        json={
            "email": "alice@example.com",
            "products": [{"name": "lápis", "quantity": 100}, {"name": "caderno", "quantity": 10}],
        },
    )
    assert response.status_code == 201
    assert '"total":120.00' in response.text
    body = _exact(response)
    assert body["total"] == Decimal("120.00")
    assert body["items"] == [
        {
            "name": "lápis",
            "quantity": 100,
            "unitValue": Decimal("1.10"),
            "lineTotal": Decimal("110.00"),
        },
        {
            "name": "caderno",
            "quantity": 10,
            "unitValue": Decimal("1.00"),
            "lineTotal": Decimal("10.00"),
        },
    ]
    assert ISO_MS.match(body["createdAt"])
    fetched = _exact(await api.get(f"/commerce/orders/{body['id']}"))
    # the stored order lists its lines by product name; same lines, same total, same moment
    assert sorted(fetched.pop("items"), key=lambda i: i["name"]) == sorted(
        body.pop("items"), key=lambda i: i["name"]
    )
    assert fetched == body
    assert await _count(engine, order_store.orders) == 1
    assert await _count(engine, outbox) == 1


async def test_cents_never_drift_like_floats(api: httpx.AsyncClient) -> None:
    await _shop(api)
    response = await api.post(
        "/commerce/create/order",
        json={"email": "alice@example.com", "products": [{"name": "clipe", "quantity": 3}]},
    )
    assert response.status_code == 201
    assert '"total":0.30' in response.text  # 3 * 0.1 in floats is 0.30000000000000004


async def test_repeated_names_are_merged(api: httpx.AsyncClient) -> None:
    await _shop(api)
    response = await api.post(
        "/commerce/orders",
        json={
            "email": "alice@example.com",
            "products": [
                {"name": "lápis", "quantity": 1},
                {"name": "caderno", "quantity": 1},
                {"name": "lápis", "quantity": 2},
            ],
        },
    )
    body = _exact(response)
    assert [(i["name"], i["quantity"]) for i in body["items"]] == [("lápis", 3), ("caderno", 1)]
    assert body["total"] == Decimal("4.30")


async def test_the_order_event_is_relayed_to_the_broker(
    api: httpx.AsyncClient, relay: Relay, fake_bus: Any
) -> None:
    await _shop(api)
    response = await api.post(
        "/commerce/orders",
        json={"email": "alice@example.com", "products": [{"name": "lápis", "quantity": 2}]},
    )
    order_id = response.json()["id"]
    assert await relay.relay_once() == 1
    [envelope] = fake_bus.published
    assert envelope.topic == messages.ORDER_CREATED
    event = messages.decode_order_created(envelope.body)
    assert (event.order_id, event.total_cents) == (order_id, 220)
    assert await relay.relay_once() == 0


@pytest.mark.parametrize(
    ("products", "where"),
    [
        ([{"name": "lápis", "quantity": 0}], "quantity"),
        ([{"name": "lápis", "quantity": -1}], "quantity"),
        ([{"name": "lápis", "quantity": "2"}], "quantity"),
        ([{"name": "lápis", "quantity": 1.5}], "quantity"),
        ([{"name": "lápis", "quantity": True}], "quantity"),
        ([{"name": "lápis"}], "quantity"),
        ([{"name": "", "quantity": 1}], "name"),
        ([{"name": "lápis", "quantity": 1, "price": 0.01}], "price"),
        ([], "products"),
        (None, "products"),
    ],
)
async def test_bad_order_bodies_are_422_and_write_nothing(
    api: httpx.AsyncClient, engine: AsyncEngine, products: Any, where: str
) -> None:
    await _shop(api)
    body: dict[str, Any] = {"email": "alice@example.com"}
    if products is not None:
        body["products"] = products
    response = await api.post("/commerce/orders", json=body)
    problem = _problem(response, 422, "validation-error")
    assert any(where in e["loc"] for e in problem["errors"]), problem["errors"]
    assert await _count(engine, order_store.orders) == 0
    assert await _count(engine, outbox) == 0


async def test_unknown_product_is_a_422(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    await _shop(api)
    response = await api.post(
        "/commerce/orders",
        json={
            "email": "alice@example.com",
            "products": [{"name": "lápis", "quantity": 1}, {"name": "borracha", "quantity": 1}],
        },
    )
    assert "borracha" in _problem(response, 422, "unknown-product")["detail"]
    assert await _count(engine, order_store.orders) == 0
    assert await _count(engine, outbox) == 0


async def test_unknown_customer_email_is_a_404(api: httpx.AsyncClient) -> None:
    await _shop(api)
    response = await api.post(
        "/commerce/orders",
        json={"email": "nobody@example.com", "products": [{"name": "lápis", "quantity": 1}]},
    )
    _problem(response, 404, "not-found")


async def test_malformed_and_extra_fields(api: httpx.AsyncClient) -> None:
    await _shop(api)
    _problem(await _post_raw(api, "/commerce/orders", '{"email": "alice@'), 400, "malformed-json")
    _problem(await _post_raw(api, "/commerce/customers", "{,}"), 400, "malformed-json")
    extra = await api.post(
        "/commerce/orders",
        json={
            "email": "alice@example.com",
            "products": [{"name": "lápis", "quantity": 1}],
            "coupon": "FREE",
        },
    )
    _problem(extra, 422, "validation-error")


async def test_unknown_order_is_a_404(api: httpx.AsyncClient) -> None:
    _problem(await api.get("/commerce/orders/424242"), 404, "not-found")


@pytest.mark.usefixtures("local_time_utc_minus_3")
async def test_an_order_reads_back_with_its_own_timestamp_on_a_non_utc_host(
    api: httpx.AsyncClient,
) -> None:
    await _shop(api)
    created = await api.post(
        "/commerce/orders",
        json={"email": "alice@example.com", "products": [{"name": "lápis", "quantity": 1}]},
    )
    fetched = await api.get(f"/commerce/orders/{created.json()['id']}")
    assert fetched.json()["createdAt"] == created.json()["createdAt"]


# --- the challenge's queries, proxied to the analytics service ---------------------------------

AT = datetime(2026, 1, 10, 12, tzinfo=UTC)


async def _feed(engine: AsyncEngine, board: MemoryBoard, order: Order) -> None:
    async with Database(engine).transaction() as tx:
        await analytics_service.record_orders(
            tx,
            [analytics_service.Received(order, f"msg-{order.order_id}", b"{}")],
            board=board,
            source="btg",
            topic=messages.CHALLENGE_QUEUE,
        )


async def _customer_42(engine: AsyncEngine, board: MemoryBoard) -> None:
    for order_id, cents in [(1, 1_000), (2, 250), (3, 10)]:
        await _feed(engine, board, Order(order_id, 42, (OrderLine("x", 1, cents),), AT))
    await _feed(engine, board, Order(4, 43, (OrderLine("y", 2, 5_000),), AT))


async def test_customer_orders_page_has_the_spec_shape(
    api: httpx.AsyncClient, engine: AsyncEngine, board: MemoryBoard
) -> None:
    await _customer_42(engine, board)
    first = await api.get("/commerce/customers/42/orders", params={"page": 0, "pageSize": 2})
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert _exact(first) == {
        "summary": {"totalOnOrders": Decimal("12.60")},
        "data": [
            {"orderId": 1, "customerId": 42, "total": Decimal("10.00")},
            {"orderId": 2, "customerId": 42, "total": Decimal("2.50")},
        ],
        "pagination": {"page": 0, "pageSize": 2, "totalElements": 3, "totalPages": 2},
    }
    assert '"totalOnOrders":12.60' in first.text
    assert '"total":2.50' in first.text

    second = await api.get("/commerce/customers/42/orders?page=1&pageSize=2")
    assert _exact(second) == {
        "summary": {"totalOnOrders": Decimal("12.60")},
        "data": [{"orderId": 3, "customerId": 42, "total": Decimal("0.10")}],
        "pagination": {"page": 1, "pageSize": 2, "totalElements": 3, "totalPages": 2},
    }


async def test_customer_without_orders(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/commerce/customers", json={"email": "quiet@example.com", "username": "quiet"}
    )
    customer = created.json()["id"]
    page = await api.get(f"/commerce/customers/{customer}/orders")
    assert _exact(page) == {
        "summary": {"totalOnOrders": Decimal("0.00")},
        "data": [],
        "pagination": {"page": 0, "pageSize": 10, "totalElements": 0, "totalPages": 0},
    }
    count = await api.get(f"/commerce/customers/{customer}/orders/count")
    assert count.json() == {"customerId": customer, "orders": 0}


async def test_the_orders_of_a_customer_nobody_knows_are_a_404(api: httpx.AsyncClient) -> None:
    """As the customer's own lookup is: neither this service nor the analytics service (which
    knows the challenge's customers by their orders) knows customer 77."""
    _problem(await api.get("/commerce/customers/77"), 404, "not-found")
    _problem(await api.get("/commerce/customers/77/orders"), 404, "not-found")
    _problem(await api.get("/commerce/customers/77/orders/count"), 404, "not-found")


@pytest.mark.parametrize("query", ["page=-1", "pageSize=0", "pageSize=501", "page=x"])
async def test_bad_paging_is_a_422(api: httpx.AsyncClient, query: str) -> None:
    _problem(await api.get(f"/commerce/customers/42/orders?{query}"), 422, "validation-error")


async def test_order_total_and_count(
    api: httpx.AsyncClient, engine: AsyncEngine, board: MemoryBoard
) -> None:
    await _customer_42(engine, board)
    total = await api.get("/commerce/orders/2/total")
    assert total.status_code == 200
    assert total.text == '{"orderId":2,"total":2.50}'
    assert (await api.get("/commerce/orders/4/total")).text == '{"orderId":4,"total":100.00}'
    count = await api.get("/commerce/customers/42/orders/count")
    assert count.json() == {"customerId": 42, "orders": 3}
    assert (await api.get("/commerce/customers/43/orders/count")).json()["orders"] == 1


async def test_unknown_order_total_is_a_404_problem(api: httpx.AsyncClient) -> None:
    body = _problem(await api.get("/commerce/orders/999/total"), 404, "not-found")
    assert "999" in body["detail"]


async def test_rankings_count_every_order(
    api: httpx.AsyncClient, engine: AsyncEngine, board: MemoryBoard
) -> None:
    await _customer_42(engine, board)
    response = await api.get("/commerce/analytics", params={"limit": 2})
    body = _exact(response)
    assert body["customersByOrders"] == [{"key": "42", "value": 3}, {"key": "43", "value": 1}]
    assert body["customersBySpend"] == [
        {"key": "43", "value": Decimal("100.00")},
        {"key": "42", "value": Decimal("12.60")},
    ]
    assert body["productsByQuantity"] == [{"key": "x", "value": 3}, {"key": "y", "value": 2}]
    assert [e["key"] for e in body["mostExpensiveOrders"]] == ["4", "1"]
    assert all(len(entries) <= 2 for entries in body.values())


async def test_a_placed_order_flows_to_the_queries(
    api: httpx.AsyncClient, engine: AsyncEngine, board: MemoryBoard, relay: Relay, fake_bus: Any
) -> None:
    await _shop(api)
    placed = await api.post(
        "/commerce/orders",
        json={
            "email": "alice@example.com",
            "products": [{"name": "lápis", "quantity": 100}, {"name": "caderno", "quantity": 10}],
        },
    )
    order = placed.json()
    await relay.relay_once()
    [envelope] = fake_bus.published
    await _feed(engine, board, messages.decode_order_created(envelope.body))
    total = await api.get(f"/commerce/orders/{order['id']}/total")
    assert total.text == f'{{"orderId":{order["id"]},"total":120.00}}'
    count = await api.get(f"/commerce/customers/{order['customerId']}/orders/count")
    assert count.json()["orders"] == 1


async def test_archive_through_the_public_api(
    api: httpx.AsyncClient, engine: AsyncEngine, board: MemoryBoard, archive: Archive
) -> None:
    await _customer_42(engine, board)
    await analytics_service.flush_archive(Database(engine), archive)
    months = (await api.get("/commerce/archive")).json()["months"]
    assert "2026-01" in months
    files = (await api.get("/commerce/archive/2026-01")).json()
    assert files["month"] == "2026-01"
    assert {f["name"] for f in files["files"]} == {"orders.jsonl.gz", "report.json"}
    download = await api.get("/commerce/archive/2026-01/orders.jsonl.gz")
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/gzip"
    lines = gzip.decompress(download.content).splitlines()
    assert sorted(orjson.loads(line)["orderId"] for line in lines) == [1, 2, 3, 4]
    report = (await api.get("/commerce/archive/2026-01/report.json")).json()
    assert (report["orders"], report["totalCents"]) == (4, 11_260)
    _problem(await api.get("/commerce/archive/1999-01"), 404, "not-found")
    _problem(await api.get("/commerce/archive/2026-02/report.json"), 404, "not-found")
    # names that cannot be an archive's are refused before any call to the service
    _problem(await api.get("/commerce/archive/2026-01/state.json"), 422, "validation-error")
    _problem(await api.get("/commerce/archive/2026-13"), 422, "validation-error")
    _problem(await api.get("/commerce/archive/2026-01/x%3Fy=1"), 422, "validation-error")
    _problem(await api.get("/commerce/archive/2026-01%0A"), 422, "validation-error")


# --- the analytics service itself --------------------------------------------------------------


async def test_analytics_requires_the_service_credential(internal: httpx.AsyncClient) -> None:
    for headers in [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Bearer "}]:
        response = await internal.get("/customers/1/orders/count", headers=headers)
        _problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    ok = await internal.get(
        "/customers/1/orders/count", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert ok.status_code == 200
    assert ok.json() == {"customerId": 1, "orders": 0}


async def test_analytics_refuses_browser_origins(internal: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = await internal.get(
        "/customers/1/orders/count", headers={**auth, "Origin": "http://evil.example"}
    )
    _problem(response, 403, "cross-origin-forbidden")
    assert "access-control-allow-origin" not in response.headers
    preflight = await internal.options(
        "/customers/1/orders/count",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 403
    assert not any(h.startswith("access-control-") for h in preflight.headers)


async def test_analytics_down_is_a_503(db: Database, orders: GroupWriter[Any, Order]) -> None:
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    analytics = await _client_on(httpx.MockTransport(refuse))
    async with await _public_api(db, orders, analytics) as api:
        for path in ["/commerce/orders/1/total", "/commerce/customers/1/orders/count"]:
            response = await api.get(path)
            _problem(response, 503, "analytics-unavailable")
            assert response.headers["retry-after"] == "1"
        # the write side still works while analytics is down
        created = await api.post(
            "/commerce/customers", json={"email": "alice@example.com", "username": "alice"}
        )
        assert created.status_code == 201
    await analytics.close()
    assert attempts.count("/orders/1/total") == 3  # the first try and 2 retries


# --- correlation id through the broker ---------------------------------------------------------


async def test_the_correlation_id_of_a_request_follows_its_event_to_the_consumer(
    api: httpx.AsyncClient, engine: AsyncEngine, relay: Relay, fake_bus: Any
) -> None:
    await _shop(api)
    concurrent = [
        api.post(
            "/commerce/orders",
            json={"email": "alice@example.com", "products": [{"name": "clipe", "quantity": n}]},
            headers={"X-Correlation-ID": f"req-{n}"},
        )
        for n in range(1, 6)
    ]
    responses = await asyncio.gather(*concurrent)  # group commit: written together
    assert [r.headers["x-correlation-id"] for r in responses] == [f"req-{n}" for n in range(1, 6)]
    await relay.relay_once()
    events = {e.body: e for e in fake_bus.published}
    seen: dict[int, str] = {}

    async def handler(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        for delivery in deliveries:
            order = messages.decode_order_created(delivery.body)
            seen[order.lines[0].quantity] = correlation_id.get()
        return [None] * len(deliveries)

    consumer = Consumer(
        subscription=Subscription(messages.ORDER_CREATED, "test"),
        handler=handler,
        db=Database(engine),
        bus=fake_bus,
    )
    for e in events.values():  # each as the batch of its own, in the message's correlation id
        delivery = Delivery(topic=e.topic, body=e.body, id=e.id, key=e.key, headers=e.headers)
        await consumer.handle_batch([delivery])
    assert seen == {n: f"req-{n}" for n in range(1, 6)}
