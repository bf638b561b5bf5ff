"""The payment processor simulator (Rinha de Backend 2025 API), driven in-process over ASGI."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from paycore.payments.simulator.pair import banner, open_processors, parse_fees
from paycore.payments.simulator.processor import PaymentProcessorApp, ProcessorState

TOKEN = {"X-Rinha-Token": "123"}
AT = "2025-07-15T12:34:56.000Z"


def body(cid: str | None = None, amount: str = "19.90", at: str = AT) -> str:
    """A payment body with ``amount`` written as is (a JSON number literal, never a float)."""
    return f'{{"correlationId":"{cid or uuid.uuid4()}","amount":{amount},"requestedAt":"{at}"}}'


def exact(response: httpx.Response) -> Any:
    """The JSON of a response with every fractional number as an exact Decimal."""
    return json.loads(response.text, parse_float=Decimal)


@pytest.fixture
def state() -> ProcessorState:
    return ProcessorState(Decimal("0.05"), health_window=0.2)


@pytest.fixture
async def client(state: ProcessorState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=PaymentProcessorApp(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://processor") as http:
        yield http


async def pay(client: httpx.AsyncClient, content: str) -> httpx.Response:
    return await client.post("/payments", content=content)


async def summary(client: httpx.AsyncClient, **window: str) -> Any:
    response = await client.get("/admin/payments-summary", params=window, headers=TOKEN)
    assert response.status_code == 200, response.text
    return exact(response)


async def count(client: httpx.AsyncClient) -> int:
    return int((await summary(client))["totalRequests"])


# --------------------------------------------------------------------------- POST /payments


async def test_a_payment_is_processed_and_counted(client: httpx.AsyncClient) -> None:
    response = await pay(client, body(amount="19.90"))

    assert response.status_code == 200
    assert response.json() == {"message": "payment processed successfully"}
    assert response.headers["content-type"] == "application/json"
    assert await summary(client) == {
        "totalRequests": 1,
        "totalAmount": Decimal("19.90"),
        "totalFee": Decimal("0.995"),
        "feePerTransaction": Decimal("0.05"),
    }


async def test_the_same_correlation_id_twice_is_422_and_counted_once(
    client: httpx.AsyncClient,
) -> None:
    cid = str(uuid.uuid4())
    assert (await pay(client, body(cid))).status_code == 200

    again = await pay(client, body(cid.upper(), amount="5.00"))  # same UUID, other spelling

    assert again.status_code == 422
    assert (await summary(client))["totalAmount"] == Decimal("19.90")


async def test_concurrent_requests_with_one_id_store_it_once(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    state.delay_ms = 30
    cid = str(uuid.uuid4())

    responses = await asyncio.gather(*(pay(client, body(cid)) for _ in range(5)))

    assert sorted(r.status_code for r in responses) == [200, 422, 422, 422, 422]
    assert await count(client) == 1


async def test_a_failing_processor_answers_500_after_the_delay_and_stores_nothing(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    stored = str(uuid.uuid4())
    assert (await pay(client, body(stored))).status_code == 200
    state.delay_ms, state.failing = 60, True

    began = time.monotonic()
    response = await pay(client, body())
    elapsed = time.monotonic() - began
    duplicate = await pay(client, body(stored))

    assert response.status_code == 500
    assert elapsed >= 0.06
    assert duplicate.status_code == 500  # failing comes before the duplicate check
    assert await count(client) == 1


async def test_the_delay_runs_before_the_payment_is_stored(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    state.delay_ms = 150
    pending = asyncio.create_task(pay(client, body()))
    await asyncio.sleep(0.05)

    during = await count(client)
    response = await pending

    assert during == 0
    assert response.status_code == 200
    assert await count(client) == 1


async def test_failure_read_after_the_delay_decides_the_answer(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    state.delay_ms = 100
    pending = asyncio.create_task(pay(client, body()))
    await asyncio.sleep(0.03)
    state.failing = True

    assert (await pending).status_code == 500
    assert await count(client) == 0


SOME_ID = "ce48a764-d4b6-4107-9c5c-9e2060db9318"
"""A fixed id in the parameters below: test ids must be the same in every collection (pytest-xdist
collects once per worker)."""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"amount": 19.90, "requestedAt": "' + AT + '"}', "correlationId"),
        ('{"correlationId": "' + SOME_ID + '", "requestedAt": "' + AT + '"}', "amount"),
        ('{"correlationId": "' + SOME_ID + '", "amount": 1}', "requestedAt"),
        (body(cid="not-a-uuid"), "UUID"),
        ('{"correlationId": 12, "amount": 1, "requestedAt": "' + AT + '"}', "UUID"),
        (body(cid=SOME_ID, amount="0"), "positive"),
        (body(cid=SOME_ID, amount="-19.90"), "positive"),
        (body(cid=SOME_ID, amount="19.901"), "2 decimal"),
        # a float would round this one to 19.90
        (body(cid=SOME_ID, amount="19.900000000000001"), "2 decimal"),
        (body(cid=SOME_ID, amount='"19.90"'), "number"),
        (body(cid=SOME_ID, amount="true"), "number"),
        (body(cid=SOME_ID, amount="NaN"), "not valid JSON"),
        (body(cid=SOME_ID, amount="Infinity"), "not valid JSON"),
        (body(cid=SOME_ID, amount="1e999999999"), "at most"),
        (body(cid=SOME_ID, amount="1000000000000.01"), "at most"),
        (body(cid=SOME_ID, at="yesterday"), "ISO 8601"),
        (body(cid=SOME_ID, at="2025-13-01T00:00:00Z"), "ISO 8601"),
        ('{"correlationId": "' + SOME_ID + '", "amount": 1, "requestedAt": 5}', "ISO"),
        ("x" * 70_000, "larger than"),
    ],
)
async def test_a_bad_payment_body_is_400_and_stores_nothing(
    client: httpx.AsyncClient, content: str, reason: str
) -> None:
    response = await pay(client, content)

    assert response.status_code == 400
    assert reason in response.json()["message"]
    assert await count(client) == 0


async def test_a_bad_body_is_400_even_when_failing_and_without_waiting(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    state.delay_ms, state.failing = 2000, True

    began = time.monotonic()
    response = await pay(client, body(amount="-1"))

    assert response.status_code == 400
    assert time.monotonic() - began < 1


async def test_amounts_are_exact_in_cents(client: httpx.AsyncClient) -> None:
    for amount in ("0.01", "0.1", "19.90", "999999999999.99", "7.02"):
        assert (await pay(client, body(amount=amount))).status_code == 200

    result = await summary(client)

    assert result["totalAmount"] == Decimal("1000000000027.02")
    assert result["totalFee"] == Decimal("50000000001.351")  # totalAmount x 0.05, not rounded


async def test_payments_beyond_max_in_flight_get_429_at_once(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    state.max_in_flight, state.delay_ms = 2, 150
    first = [asyncio.create_task(pay(client, body())) for _ in range(2)]
    await asyncio.sleep(0.03)

    began = time.monotonic()
    refused = await pay(client, body())
    refused_in = time.monotonic() - began
    accepted = await asyncio.gather(*first)
    later = await pay(client, body())

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused_in < 0.1
    assert [r.status_code for r in accepted] == [200, 200]
    assert later.status_code == 200
    assert await count(client) == 3


# --------------------------------------------------------------------------- health


async def test_health_reports_failure_and_delay_once_per_window(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    state.delay_ms, state.failing = 1000, True

    first = await client.get("/payments/service-health")
    second = await client.get("/payments/service-health")
    await asyncio.sleep(0.25)
    state.failing = False
    third = await client.get("/payments/service-health")

    assert first.status_code == 200
    assert first.json() == {"failing": True, "minResponseTime": 1000}
    assert second.status_code == 429
    assert second.headers["retry-after"] == "1"
    assert third.status_code == 200
    assert third.json() == {"failing": False, "minResponseTime": 1000}


async def test_the_default_health_window_is_five_seconds() -> None:
    state = ProcessorState(Decimal("0.05"))

    assert state.take_health_slot(100.0) == 0
    assert state.take_health_slot(104.9) == pytest.approx(0.1)
    assert state.take_health_slot(105.0) == 0


# --------------------------------------------------------------------------- admin


ADMIN_CALLS = [
    ("GET", "/admin/payments-summary", None),
    ("PUT", "/admin/configurations/token", {"token": "x"}),
    ("PUT", "/admin/configurations/delay", {"delay": 10}),
    ("PUT", "/admin/configurations/failure", {"failure": True}),
    ("POST", "/admin/purge-payments", None),
]


@pytest.mark.parametrize(("method", "path", "payload"), ADMIN_CALLS)
@pytest.mark.parametrize("headers", [{}, {"X-Rinha-Token": "1234"}, {"X-Rinha-Token": ""}])
async def test_admin_endpoints_need_the_token(
    client: httpx.AsyncClient,
    state: ProcessorState,
    method: str,
    path: str,
    payload: Any,
    headers: dict[str, str],
) -> None:
    response = await client.request(method, path, json=payload, headers=headers)

    assert response.status_code == 401
    assert "X-Rinha-Token" in response.json()["message"]
    assert (state.token, state.delay_ms, state.failing) == ("123", 0, False)


async def test_changing_the_token_retires_the_old_one(client: httpx.AsyncClient) -> None:
    changed = await client.put(
        "/admin/configurations/token", json={"token": "s3cret"}, headers=TOKEN
    )

    old = await client.get("/admin/payments-summary", headers=TOKEN)
    new = await client.get("/admin/payments-summary", headers={"X-Rinha-Token": "s3cret"})

    assert changed.status_code == 200
    assert old.status_code == 401
    assert new.status_code == 200


async def test_delay_and_failure_are_configured_over_http(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    delay = await client.put("/admin/configurations/delay", json={"delay": 40}, headers=TOKEN)
    failure = await client.put(
        "/admin/configurations/failure", json={"failure": True}, headers=TOKEN
    )

    began = time.monotonic()
    paid = await pay(client, body())

    assert (delay.status_code, failure.status_code) == (200, 200)
    assert (state.delay_ms, state.failing) == (40, True)
    assert paid.status_code == 500
    assert time.monotonic() - began >= 0.04


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/admin/configurations/delay", '{"delay": -1}'),
        ("/admin/configurations/delay", '{"delay": "100"}'),
        ("/admin/configurations/delay", '{"delay": 1.5}'),
        ("/admin/configurations/delay", '{"delay": true}'),
        ("/admin/configurations/delay", '{"delay": 600001}'),
        ("/admin/configurations/delay", '{"delay": 1e999999}'),
        ("/admin/configurations/delay", "{}"),
        ("/admin/configurations/failure", '{"failure": "yes"}'),
        ("/admin/configurations/failure", '{"failure": 1}'),
        ("/admin/configurations/failure", '{"failure": null}'),
        ("/admin/configurations/token", '{"token": ""}'),
        ("/admin/configurations/token", '{"token": 123}'),
        ("/admin/configurations/token", "not json"),
    ],
)
async def test_a_bad_admin_body_is_400_and_changes_nothing(
    client: httpx.AsyncClient, state: ProcessorState, path: str, content: str
) -> None:
    response = await client.put(path, content=content, headers=TOKEN)

    assert response.status_code == 400
    assert "message" in response.json()
    assert (state.token, state.delay_ms, state.failing) == ("123", 0, False)


async def test_whole_delays_written_with_a_fraction_are_accepted(
    client: httpx.AsyncClient, state: ProcessorState
) -> None:
    response = await client.put(
        "/admin/configurations/delay", content='{"delay": 100.0}', headers=TOKEN
    )

    assert response.status_code == 200
    assert state.delay_ms == 100


async def test_summary_windows_are_inclusive_on_requested_at(client: httpx.AsyncClient) -> None:
    stamps = [
        ("2025-07-15T12:00:00.000Z", "10.00"),
        ("2025-07-15T12:00:01.000Z", "20.05"),
        ("2025-07-15T09:00:02.000-03:00", "30.10"),  # 12:00:02 UTC
        ("2025-07-15T12:00:03.000Z", "0.01"),
    ]
    for at, amount in stamps:
        assert (await pay(client, body(amount=amount, at=at))).status_code == 200

    both = await summary(
        client, **{"from": "2025-07-15T12:00:01.000Z", "to": "2025-07-15T12:00:02.000Z"}
    )
    start_only = await summary(client, **{"from": "2025-07-15T12:00:02Z"})
    end_only = await summary(client, to="2025-07-15T12:00:00.000Z")
    empty_bounds = await summary(client, **{"from": "", "to": ""})
    between = await summary(
        client, **{"from": "2025-07-15T12:00:00.001Z", "to": "2025-07-15T12:00:00.999Z"}
    )
    naive = await summary(client, **{"from": "2025-07-15T12:00:03"})
    offset = await summary(
        client, **{"from": "2025-07-15T09:00:02-03:00", "to": "2025-07-15T09:00:02-03:00"}
    )

    assert (both["totalRequests"], both["totalAmount"]) == (2, Decimal("50.15"))
    assert both["totalFee"] == Decimal("2.5075")
    assert (start_only["totalRequests"], start_only["totalAmount"]) == (2, Decimal("30.11"))
    assert (end_only["totalRequests"], end_only["totalAmount"]) == (1, Decimal("10.00"))
    assert (empty_bounds["totalRequests"], empty_bounds["totalAmount"]) == (4, Decimal("60.16"))
    assert between == {
        "totalRequests": 0,
        "totalAmount": Decimal("0.00"),
        "totalFee": Decimal("0.00"),
        "feePerTransaction": Decimal("0.05"),
    }
    assert naive["totalRequests"] == 1  # a timestamp without an offset is UTC
    assert offset["totalAmount"] == Decimal("30.10")


async def test_summary_numbers_are_plain_json_decimals(client: httpx.AsyncClient) -> None:
    await pay(client, body(amount="19.90"))
    await pay(client, body(amount="0.10"))

    response = await client.get("/admin/payments-summary", headers=TOKEN)

    assert response.text == (
        '{"totalRequests":2,"totalAmount":20.00,"totalFee":1.00,"feePerTransaction":0.05}'
    )


@pytest.mark.parametrize("window", [{"from": "yesterday"}, {"to": "2025-07-15T25:00:00Z"}])
async def test_a_bad_summary_window_is_400(
    client: httpx.AsyncClient, window: dict[str, str]
) -> None:
    response = await client.get("/admin/payments-summary", params=window, headers=TOKEN)

    assert response.status_code == 400
    assert "ISO 8601" in response.json()["message"]


async def test_purge_forgets_every_payment(client: httpx.AsyncClient) -> None:
    cid = str(uuid.uuid4())
    await pay(client, body(cid))
    await pay(client, body())

    purged = await client.post("/admin/purge-payments", headers=TOKEN)

    assert purged.status_code == 200
    assert await count(client) == 0
    assert (await pay(client, body(cid))).status_code == 200  # the id is free again
    assert await count(client) == 1


# --------------------------------------------------------------------------- routing


async def test_an_unknown_route_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/payments-summary")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "/payments-summary" in response.json()["message"]


async def test_a_known_route_with_another_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/payments")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


# --------------------------------------------------------------------------- state and setup


def test_summary_over_many_out_of_order_payments_is_exact_and_quick() -> None:
    state = ProcessorState(Decimal("0.15"))
    rng = random.Random(7)
    base = 1_752_582_896_000_000
    rows = [
        (base + i * 1000 + rng.randint(-5000, 5000), rng.randint(1, 10_000)) for i in range(100_000)
    ]
    for i, (at, cents) in enumerate(rows):
        assert state.store(f"id-{i}", at, cents)
    windows = [sorted(rng.sample(range(base - 10_000, base + 100_010_000), 2)) for _ in range(20)]

    began = time.perf_counter()
    results = [state.summary(start, end) for start, end in windows]
    elapsed = time.perf_counter() - began

    for (start, end), result in zip(windows, results, strict=True):
        chosen = [cents for at, cents in rows if start <= at <= end]
        assert (result.total_requests, result.total_cents) == (len(chosen), sum(chosen))
    assert elapsed < 1.0, f"20 summaries over 100k payments took {elapsed:.2f} s"


@pytest.mark.parametrize("fee", ["1", "1.0", "-0.01", "abc", "NaN", "0.0000001", ""])
def test_bad_fees_are_refused_with_the_option_name(fee: str) -> None:
    with pytest.raises(ValueError, match="--fallback-fee"):
        parse_fees("0.05", fee)


def test_a_pair_on_one_port_is_refused() -> None:
    with pytest.raises(ValueError, match="must differ"):
        open_processors("127.0.0.1", (8001, 8001), (Decimal("0.05"), Decimal("0.15")))


def test_a_pair_binds_two_ports_and_describes_them() -> None:
    pair = open_processors("127.0.0.1", (0, 0), parse_fees("0.05", "0.15"), max_in_flight=7)
    try:
        text = banner(pair)
        urls = [p.url for p in pair]
        assert [p.name for p in pair] == ["default", "fallback"]
        assert urls[0] != urls[1]
        assert all(url.startswith("http://127.0.0.1:") for url in urls)
        assert f"{urls[0]}   fee 0.05" in text
        assert f"{urls[1]}   fee 0.15" in text
        assert [p.app.state.max_in_flight for p in pair] == [7, 7]
    finally:
        for processor in pair:
            processor.sock.close()


def test_a_port_in_use_is_refused_and_frees_the_first() -> None:
    first = open_processors("127.0.0.1", (0, 0), parse_fees("0.05", "0.15"))
    busy = first[0].sock.getsockname()[1]
    first[0].sock.listen()
    try:
        with pytest.raises(OSError, match=f"127.0.0.1:{busy}"):
            open_processors("127.0.0.1", (0, busy), parse_fees("0.05", "0.15"))
    finally:
        for processor in first:
            processor.sock.close()
