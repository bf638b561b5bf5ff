"""``/docs`` works without the internet: the API as a process, its documentation page opened in
headless Chromium with every request off this machine refused, shows the routes of every
context (the page's script and style come from the package, not from a CDN)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_kit import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import Route, sync_playwright
from procs import Proc, paycore_env, paycore_process
from servers import Server, free_port

pytestmark = pytest.mark.slow


def test_the_documentation_page_needs_nothing_from_the_internet(
    tmp_path: Path, nats_server: Server
) -> None:
    env = paycore_env(data_dir=tmp_path, broker_url=nats_server.url, log_level="WARNING")
    Proc(["migrate"], env, tmp_path / "migrate.log").start().popen.wait()  # type: ignore[union-attr]
    port = free_port()
    api = paycore_process("api", [], env, tmp_path, port).start()
    base = f"http://127.0.0.1:{port}"
    elsewhere: list[str] = []

    def only_here(route: Route) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:  # as on a machine without the internet
            elsewhere.append(route.request.url)
            route.abort()

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.route("**/*", only_here)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock")  # the operations, drawn from the document
            shown = page.inner_text("body")
            browser.close()
    finally:
        api.stop()
    assert elsewhere == []
    for path in ("/gateway/transactions", "/payments/payments", "/fulfillment/orders/{order_uid}"):
        assert path in shown
