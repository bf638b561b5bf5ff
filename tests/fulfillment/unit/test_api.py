"""The fulfillment API in process (with and without the fast lane): an order submitted with the
``order_uid`` of a stored order but other content is refused at once (409), so nothing is
accepted that the worker would then drop; the same order again is accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.fulfillment import api, service
from paycore.fulfillment.generator import generate
from paycore.platform.persistence.uow import Database

JSON = {"content-type": "application/json"}


def _orders(count: int) -> list[dict[str, Any]]:
    return [orjson.loads(body) for body, defect in generate(count, 0.0, 11) if defect is None]


@pytest.fixture(params=["fast-lane", "framework-route"])
async def http(
    request: pytest.FixtureRequest, engine: AsyncEngine, fake_bus: Any
) -> AsyncIterator[httpx.AsyncClient]:
    db = Database(engine)
    cache = service.OrderCache(db.connect, api.render, size=10)
    app = served(
        [(api.routes, "")],
        state={"fulfillment": api.FulfillmentApi(cache, fake_bus, db)},
        fast_lane=request.param == "fast-lane",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://f") as c:
        yield c


async def test_an_order_uid_stored_with_other_content_is_a_409_at_once(
    http: httpx.AsyncClient, engine: AsyncEngine, fake_bus: Any
) -> None:
    stored, new = _orders(2)
    async with Database(engine).transaction() as tx:
        assert await service.ingest(tx, [orjson.dumps(stored)]) == [None]

    other = {**stored, "delivery": {**stored["delivery"], "name": "Someone Else"}}
    refused = await http.post("/orders", content=orjson.dumps(other), headers=JSON)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "duplicate-order-uid"
    assert stored["order_uid"] in refused.json()["detail"]
    assert fake_bus.published == []

    # the same order, its keys in another order and spaced out: the same content
    same = orjson.dumps(dict(reversed(list(stored.items()))), option=orjson.OPT_INDENT_2)
    assert (await http.post("/orders", content=same, headers=JSON)).status_code == 202
    assert (await http.post("/orders", content=orjson.dumps(new), headers=JSON)).status_code == 202
    assert [e.key for e in fake_bus.published] == [stored["order_uid"], new["order_uid"]]
