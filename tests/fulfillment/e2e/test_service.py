"""The fulfillment service as deployed: `paycore api --context fulfillment --root` and
`paycore worker --context fulfillment` on PostgreSQL and NATS; orders submitted over HTTP and
through `paycore publish orders`; the lookup page driven in headless Chromium, on a desktop's
screen and on a phone's (nothing sticks out sideways)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_kit import CHROMIUM, CHROMIUM_ARGS, overflowing, phone
from playwright.sync_api import Page, sync_playwright
from procs import paycore_env, paycore_process, until
from servers import Server, free_port

from paycore.fulfillment.generator import generate
from paycore.schema import upgrade

SAMPLE: dict[str, Any] = {
    "order_uid": "b563feb7b2b84b6test",
    "track_number": "WBILMTESTTRACK",
    "entry": "WBIL",
    "delivery": {
        "name": "Test Testov",
        "phone": "+9720000000",
        "zip": "2639809",
        "city": "Kiryat Mozkin",
        "address": "Ploshad Mira 15",
        "region": "Kraiot",
        "email": "test@gmail.com",
    },
    "payment": {
        "transaction": "b563feb7b2b84b6test",
        "request_id": "",
        "currency": "USD",
        "provider": "wbpay",
        "amount": 1817,
        "payment_dt": 1637907727,
        "bank": "alpha",
        "delivery_cost": 1500,
        "goods_total": 317,
        "custom_fee": 0,
    },
    "items": [
        {
            "chrt_id": 9934930,
            "track_number": "WBILMTESTTRACK",
            "price": 453,
            "rid": "ab4219087a764ae0btest",
            "name": "Mascaras",
            "sale": 30,
            "size": "0",
            "total_price": 317,
            "nm_id": 2389212,
            "brand": "Vivienne Sabo",
            "status": 202,
        }
    ],
    "locale": "en",
    "internal_signature": "",
    "customer_id": "test",
    "delivery_service": "meest",
    "shardkey": "9",
    "sm_id": 99,
    "date_created": "2021-11-26T06:22:19Z",
    "oof_shard": "1",
}


@pytest.fixture
def service(tmp_path: Path, postgres_url: str, nats_server: Server) -> Iterator[dict[str, Any]]:
    upgrade(postgres_url)
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        database_url=postgres_url,
        broker_url=nats_server.url,
        data_dir=tmp_path / "data",
        api_port=api_port,
        worker_port=worker_port,
    )
    worker = paycore_process("worker", ["fulfillment"], env, tmp_path, worker_port).start()
    api = paycore_process("api", ["fulfillment"], env, tmp_path, api_port, root=True).start()
    try:
        yield {"base": f"http://127.0.0.1:{api_port}", "env": env, "api": api, "dir": tmp_path}
    finally:
        api.stop()
        worker.stop()


def test_submitted_and_published_orders_can_be_looked_up(service: dict[str, Any]) -> None:
    with httpx.Client(base_url=service["base"], timeout=10) as http:
        missing = http.get("/orders/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"

        accepted = http.post("/orders", json=SAMPLE)
        assert accepted.status_code == 202, accepted.text
        stored = until(lambda: (r := http.get(f"/orders/{SAMPLE['order_uid']}")).is_success and r)
        assert stored.json() == SAMPLE

        # the uid of a stored order with other content: refused at once, never dropped later
        clash = http.post("/orders", json=dict(SAMPLE, customer_id="someone-else"))
        assert (clash.status_code, clash.json()["code"]) == (409, "duplicate-order-uid")
        assert http.post("/orders", json=SAMPLE).status_code == 202  # the same order again

        broken = dict(SAMPLE, payment=dict(SAMPLE["payment"], amount=1))
        refused = http.post("/orders", json=broken)
        assert refused.status_code == 422
        assert (refused.json()["kind"], refused.json()["field"]) == (
            "inconsistent",
            "payment.amount",
        )
        json_type = {"content-type": "application/json"}
        assert http.post("/orders", content=b"{not json", headers=json_type).status_code == 400

    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "paycore",
            "publish",
            "orders",
            "--count",
            "200",
            "--bad-rate",
            "0.1",
            "--seed",
            "3",
        ],
        env=service["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert published.returncode == 0, published.stderr
    assert "published 200 message(s)" in published.stderr
    assert "seed 3 was given: these are the orders of every run with --seed 3" in published.stderr
    valid = [json.loads(body) for body, kind in generate(200, 0.1, 3) if kind is None]
    assert f"published 200 message(s) to orders: {len(valid)} valid, " in published.stderr
    assert f"/fulfillment/?order={valid[0]['order_uid']}" in published.stderr
    with httpx.Client(base_url=service["base"], timeout=10) as http:
        last = valid[-1]["order_uid"]
        until(lambda: http.get(f"/orders/{last}").is_success)
        for order in valid:
            assert http.get(f"/orders/{order['order_uid']}").json() == order

    # A restarted API answers from its cache, warmed from the database at start.
    service["api"].stop()
    service["api"].start()
    with httpx.Client(base_url=service["base"], timeout=10) as http:
        again = http.get(f"/orders/{valid[0]['order_uid']}")
        assert again.status_code == 200
        assert again.headers["x-cache"] == "hit"


def test_the_lookup_page_shows_an_order_and_says_when_there_is_none(
    service: dict[str, Any],
) -> None:
    with httpx.Client(base_url=service["base"], timeout=10) as http:
        assert http.post("/orders", json=SAMPLE).status_code == 202
        until(lambda: http.get(f"/orders/{SAMPLE['order_uid']}").is_success)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name, opened in (("desktop", browser.new_page), ("phone", lambda: phone(browser))):
            page: Page = opened()
            page.goto(service["base"] + "/")
            assert overflowing(page) == [], f"the empty page on a {name}"
            page.fill("#uid", SAMPLE["order_uid"])
            page.click("button[type=submit]")
            page.wait_for_selector("text=Order b563feb7b2b84b6test")
            text = page.inner_text("#result")
            for expected in (
                "WBILMTESTTRACK",
                "Test Testov",
                "1817 USD",
                "Mascaras",
                "Vivienne Sabo",
            ):
                assert expected in text
            assert overflowing(page) == [], f"an order shown on a {name}"
            page.screenshot(path=str(service["dir"] / f"lookup-{name}.png"), full_page=True)

            page.fill("#uid", "does-not-exist")
            page.click("button[type=submit]")
            page.wait_for_selector(".message")
            assert page.inner_text(".message") == 'No order with id "does-not-exist".'
            assert page.url == service["base"] + "/?order=does-not-exist"  # a link to what is shown
            assert overflowing(page) == [], f"an unknown order on a {name}"
            page.close()

        # A link names an order (`paycore publish orders` prints such links): it is shown.
        linked = browser.new_page()
        linked.goto(service["base"] + f"/?order={SAMPLE['order_uid']}")
        linked.wait_for_selector("text=Order b563feb7b2b84b6test")
        assert linked.input_value("#uid") == SAMPLE["order_uid"]
        assert "Vivienne Sabo" in linked.inner_text("#result")
        browser.close()


def test_two_contents_for_one_new_uid_in_flight_are_never_dropped_silently(
    service: dict[str, Any],
) -> None:
    """Both submitted before either is stored: the first stored wins; the other, if it was
    accepted, is a dead letter with the reason (as the README says)."""
    first = dict(SAMPLE, order_uid="race-uid-1")
    second = dict(first, customer_id="someone-else")
    with httpx.Client(base_url=service["base"], timeout=10) as http:
        answers = [http.post("/orders", json=order).status_code for order in (first, second)]
        assert answers[0] == 202
        assert answers[1] in (202, 409)
        stored = until(lambda: (r := http.get("/orders/race-uid-1")).is_success and r).json()
    if answers[1] == 409:
        return
    loser = second if stored == first else first

    def letters() -> list[dict[str, Any]]:
        listed = subprocess.run(
            [
                sys.executable,
                "-m",
                "paycore",
                "dead-letters",
                "list",
                "--topic",
                "orders",
                "--json",
            ],
            env=service["env"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return [json.loads(line) for line in listed.stdout.splitlines()]

    [letter] = until(letters, timeout=30)
    assert letter["error"].startswith("duplicate-order-uid: order race-uid-1 is already stored")
    assert json.loads(letter["body"]) == loser
