"""The gateway as deployed: `paycore api --context gateway` and `paycore worker --context
gateway` on SQLite and NATS JetStream, a real webhook receiver; then the database file, every
log and the broker's own storage scanned for the card numbers used. The dashboard is driven in
Debian's headless Chromium, also on a phone's screen (nothing sticks out sideways). The API's
guards as a client meets them: a capped number of dashboard streams, a client address shut out
after failed secrets."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_kit import CHROMIUM, CHROMIUM_ARGS, overflowing, phone
from gateway_kit import (
    ADMIN_TOKEN,
    CARDS,
    WebhookReceiver,
    create_account,
    expected_decision,
    files_under,
    gateway_settings,
    transaction,
)
from playwright.sync_api import Page, expect, sync_playwright
from procs import paycore_env, paycore_process, until
from servers import Server, free_port, start_nats

from paycore.gateway.crypto import verify_webhook
from paycore.schema import upgrade

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "screenshots" / "gateway-dashboard.png"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, Any]]:
    nats: Server = start_nats(tmp_path / "broker")
    database = tmp_path / "data" / "paycore.db"
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)
    api_port, worker_port = free_port(), free_port()
    env = paycore_env(
        database_url=url,
        broker_url=nats.url,
        data_dir=tmp_path / "data",
        api_port=api_port,
        worker_port=worker_port,
        **gateway_settings(
            gateway_webhook_backoff_ms=200,
            gateway_auth_failures=3,
            gateway_auth_window_seconds=3,
            gateway_max_streams=2,
        ),
    )
    worker = paycore_process("worker", ["gateway"], env, tmp_path, worker_port).start()
    api = paycore_process("api", ["gateway"], env, tmp_path, api_port).start()
    try:
        yield {
            "base": f"http://127.0.0.1:{api_port}",
            "api": api,
            "worker": worker,
            "nats": nats,
            "dir": tmp_path,
            "database": database,
        }
    finally:
        api.stop()
        worker.stop()
        nats.stop()


def test_transactions_are_decided_notified_and_no_card_number_rests_anywhere(
    deployment: dict[str, Any],
) -> None:
    base = deployment["base"]
    with WebhookReceiver() as receiver:
        shop = create_account(base, "shop", receiver.url)
        other = create_account(base, "other")
        ids: dict[str, int] = {}
        with httpx.Client(base_url=base, timeout=10) as http:
            for n in range(150):
                secret = shop["secret"] if n % 3 else other["secret"]
                answer = http.post(
                    "/gateway/transactions",
                    json=transaction(n),
                    headers={"Authorization": f"Bearer {secret}"},
                )
                assert answer.status_code == 202, answer.text
                ids[answer.json()["id"]] = n
            # refused bodies carrying a real card number
            for bad in ({"amount": "1.001"}, {"amount": -1}, {"credit_card_cvv": "x"}):
                refused = http.post(
                    "/gateway/transactions",
                    json={**transaction(0), **bad},
                    headers={"x-token": shop["secret"]},
                )
                assert refused.status_code == 422
            shop_auth = {"Authorization": f"Bearer {shop['secret']}"}
            until(
                lambda: (
                    http.get("/gateway/stats", headers=shop_auth).json()["pending"]["count"] == 0
                )
            )
            other_auth = {"Authorization": f"Bearer {other['secret']}"}
            until(
                lambda: (
                    http.get("/gateway/stats", headers=other_auth).json()["pending"]["count"] == 0
                )
            )
            for tx_id, n in ids.items():
                auth = shop_auth if n % 3 else other_auth
                got = http.get(f"/gateway/transactions/{tx_id}", headers=auth).json()
                assert (got["status"], got["error_message"]) == expected_decision(n), n
            foreign = next(i for i, n in ids.items() if n % 3 == 0)
            assert (
                http.get(f"/gateway/transactions/{foreign}", headers=shop_auth).status_code == 404
            )
            refused = http.get("/gateway/transactions", headers={"Authorization": "Bearer pcsk_x"})
            assert refused.status_code == 401

        hooked = {i for i, n in ids.items() if n % 3}
        until(lambda: set(receiver.transaction_ids()) == hooked, timeout=60)
        time.sleep(1)
        assert receiver.transaction_ids() == {i: 1 for i in hooked}  # each exactly once
        for headers, body in receiver.requests:
            assert verify_webhook(
                shop["webhook_secret"], headers["paycore-signature"], body, int(time.time())
            )

    deployment["api"].stop()
    deployment["worker"].stop()
    deployment["nats"].stop()
    scanned = list(
        files_under(
            deployment["database"].parent,  # the SQLite file, its WAL and the data dir
            deployment["api"].log_path,
            deployment["worker"].log_path,
            deployment["nats"].data_dir,  # JetStream's own storage and log
        )
    )
    assert any(p.name == "paycore.db" for p in scanned)
    assert {deployment["api"].log_path, deployment["worker"].log_path} <= set(scanned)
    assert any(p.suffix == ".blk" for p in scanned)  # JetStream message blocks
    hits = [
        (str(path), number)
        for path in scanned
        for number, _ in CARDS
        if number.encode() in path.read_bytes()
    ]
    assert hits == []


def test_streams_are_capped_and_bad_secrets_shut_an_address_out(
    deployment: dict[str, Any],
) -> None:
    base = deployment["base"]
    shop = create_account(base, "shop")
    good = {"Authorization": f"Bearer {shop['secret']}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.post("/gateway/dashboard/login", json={"secret": shop["secret"]}).is_success

        def stream_opens() -> bool:
            with http.stream("GET", "/gateway/dashboard/events") as probe:
                return probe.status_code == 200

        with contextlib.ExitStack() as held:
            streams = [held.enter_context(http.stream("GET", "/gateway/dashboard/events"))]
            streams.append(held.enter_context(http.stream("GET", "/gateway/dashboard/events")))
            assert [s.status_code for s in streams] == [200, 200]
            refused = http.get("/gateway/dashboard/events")
            assert (refused.status_code, refused.json()["code"]) == (429, "too-many-streams")
            streams[0].close()  # a tab closed: the server sees it leave
            until(stream_opens, timeout=10)

        # three bad secrets from this address, then even the right one waits out the window
        for _ in range(3):
            bad = http.get("/gateway/transactions", headers={"Authorization": "Bearer pcsk_x"})
            assert bad.status_code == 401
        refused = http.post("/gateway/transactions", json=transaction(0), headers=good)
        assert (refused.status_code, refused.json()["code"]) == (429, "rate-limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 3
        until(lambda: http.get("/gateway/transactions", headers=good).status_code == 200, 10)

        # private receivers are allowed in this deployment; credentials in a URL never are
        answer = http.post(
            "/gateway/accounts",
            json={"name": "x", "webhook_url": "http://user:pw@127.0.0.1:9/h"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert (answer.status_code, answer.json()["code"]) == (422, "webhook-url-not-allowed")


def test_the_dashboard_shows_transactions_live(deployment: dict[str, Any]) -> None:
    base = deployment["base"]
    shop = create_account(base, "Loja da Ana")
    auth = {"Authorization": f"Bearer {shop['secret']}"}
    with sync_playwright() as p, httpx.Client(base_url=base, timeout=10) as http:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page: Page = browser.new_page(viewport={"width": 1360, "height": 900})
        page.goto(base + "/gateway/dashboard")

        page.fill("#secret", "pcsk_not-a-real-secret")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Invalid secret.")
        assert page.locator("#dashboard-view").is_hidden()

        page.fill("#secret", shop["secret"])
        page.click("#login-form button[type=submit]")
        expect(page.locator("#account-name")).to_have_text("Loja da Ana")
        expect(page.locator("#live")).to_have_text("live")

        # with the processor stopped, transactions show up pending...
        deployment["worker"].stop()
        sent = [
            http.post("/gateway/transactions", json=transaction(n), headers=auth).json()
            for n in range(9)
        ]
        rows = page.locator("#transactions tbody tr")
        expect(rows).to_have_count(9)
        expect(page.locator("#transactions .status.pending")).to_have_count(9)
        expect(page.locator("#count-pending")).to_have_text("9")

        # ...and turn approved or rejected when it runs, without a reload
        deployment["worker"].start()
        expect(page.locator("#transactions .status.pending")).to_have_count(0, timeout=30_000)
        expected = [expected_decision(n) for n in range(9)]
        for tx, (status, message) in zip(sent, expected, strict=True):
            row = page.locator(f'#transactions tr[data-id="{tx["id"]}"]')
            expect(row.locator(".status")).to_have_text(status)
            expect(row.locator("td.message")).to_have_text(message)
        approved = sum(1 for status, _ in expected if status == "approved")
        expect(page.locator("#count-approved")).to_have_text(str(approved))
        expect(page.locator("#count-rejected")).to_have_text(str(9 - approved))
        expect(page.locator("#count-total")).to_have_text("9")

        # the detail view
        page.locator(f'#transactions tr[data-id="{sent[2]["id"]}"]').click()
        expect(page.locator('#detail-fields dd[data-field="id"]')).to_have_text(sent[2]["id"])
        expect(page.locator('#detail-fields dd[data-field="brand"]')).to_have_text("amex")
        expect(page.locator('#detail-fields dd[data-field="card"]')).to_have_text("•••• 8431")

        # more traffic for the counters and the chart, then the screenshot
        for n in range(9, 60):
            http.post("/gateway/transactions", json=transaction(n), headers=auth)
            time.sleep(0.05)
        expect(page.locator("#count-total")).to_have_text("60", timeout=30_000)
        expect(page.locator("#transactions .status.pending")).to_have_count(0, timeout=30_000)
        page.wait_for_timeout(1200)  # one chart redraw
        assert page.evaluate("document.body.innerText").count("4556737586899855") == 0
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))

        page.click("#logout")
        expect(page.locator("#login-view")).to_be_visible()
        page.reload()
        expect(page.locator("#login-view")).to_be_visible()  # the session is gone
        browser.close()


def test_the_dashboard_fits_a_phone_screen(deployment: dict[str, Any]) -> None:
    base = deployment["base"]
    shop = create_account(base, "Loja da Ana Maria de Souza Comércio de Papelaria Ltda")
    auth = {"Authorization": f"Bearer {shop['secret']}"}
    with sync_playwright() as p, httpx.Client(base_url=base, timeout=10) as http:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = phone(browser)
        page.goto(base + "/gateway/dashboard")
        expect(page.locator("#login-view")).to_be_visible()
        assert overflowing(page) == [], "the login page"

        page.fill("#secret", "pcsk_not-a-real-secret")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error")).to_have_text("Invalid secret.")
        assert overflowing(page) == [], "the login page with its error"

        page.fill("#secret", shop["secret"])
        page.click("#login-form button[type=submit]")
        expect(page.locator("#live")).to_have_text("live")
        assert overflowing(page) == [], "logged in, no transaction yet"

        sent = [
            http.post("/gateway/transactions", json=transaction(n), headers=auth).json()
            for n in range(12)
        ]
        expect(page.locator("#transactions tbody tr")).to_have_count(12)
        expect(page.locator("#transactions .status.pending")).to_have_count(0, timeout=30_000)
        expect(page.locator("#count-total")).to_have_text("12")
        page.wait_for_timeout(1200)  # one chart redraw
        assert overflowing(page) == [], "with transactions"

        page.locator(f'#transactions tr[data-id="{sent[3]["id"]}"]').click()
        expect(page.locator('#detail-fields dd[data-field="id"]')).to_have_text(sent[3]["id"])
        assert overflowing(page) == [], "with a transaction's detail open"
        page.screenshot(path=str(deployment["dir"] / "dashboard-phone.png"), full_page=True)
        browser.close()
