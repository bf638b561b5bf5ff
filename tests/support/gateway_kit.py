"""What the gateway's end-to-end, chaos tests and benchmark share: its settings, a webhook
receiver, accounts created through the admin API, a stream of varied transactions."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
from procs import SECRETS
from servers import free_port

from paycore.gateway.domain import Card, decide
from paycore.platform.money import to_cents

ADMIN_TOKEN = "e2e-admin-token"
CARD_KEYS = SECRETS["card_keys"]
PEPPER = SECRETS["secret_pepper"]

# (number, cvv): valid cards of several brands, and broken ones; each number is unique to
# this list so a scan for it means something.
CARDS = [
    ("4556737586899855", "123"),  # visa
    ("5105105105105100", "456"),  # mastercard
    ("371449635398431", "7890"),  # amex
    ("6011000990139424", "321"),  # discover
    ("3566002020360505", "654"),  # jcb
    ("6362970000457013", "111"),  # elo
    ("6062825624254001", "222"),  # hipercard
    ("4556737586899856", "123"),  # Luhn digit wrong
    ("5105105105105100", "45"),  # CVV too short
]
AMOUNTS = [0.99, 1.00, 25.90, 1000.00, 1000.01, 310.45]  # JSON numbers, written exactly


def gateway_settings(**extra: Any) -> dict[str, Any]:
    """The ``PAYCORE_*`` settings (without the prefix) of a gateway deployment under test.
    Its webhook receivers listen on 127.0.0.1, which webhooks may only reach when private
    addresses are allowed."""
    return {
        "admin_token": ADMIN_TOKEN,
        "card_keys": CARD_KEYS,
        "secret_pepper": PEPPER,
        "gateway_webhook_allow_private": True,
        **extra,
    }


def transaction(n: int) -> dict[str, Any]:
    """The n-th transaction of a varied, repeatable stream."""
    number, cvv = CARDS[n % len(CARDS)]
    return {
        "amount": AMOUNTS[(n // len(CARDS)) % len(AMOUNTS)],
        "credit_card_number": number,
        "credit_card_name": f"Holder {n}",
        "credit_card_expiration_month": 1 + n % 12,
        "credit_card_expiration_year": 2031,
        "credit_card_cvv": cvv,
    }


def card_and_cents(n: int) -> tuple[Card, int]:
    """``transaction(n)``'s card and amount (cents), as the API reads them."""
    body = transaction(n)
    card = Card(
        body["credit_card_number"],
        body["credit_card_name"],
        body["credit_card_expiration_month"],
        body["credit_card_expiration_year"],
        body["credit_card_cvv"],
    )
    return card, to_cents(str(body["amount"]))


def expected_decision(n: int, today: date | None = None) -> tuple[str, str]:
    """What the processor must decide for ``transaction(n)``: (status, error message)."""
    decision = decide(*card_and_cents(n), today or datetime.now(UTC).date())
    return decision.status, decision.error_message


def create_account(base: str, name: str, webhook_url: str | None = None) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/gateway/accounts",
        json={"name": name, "webhook_url": webhook_url},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every webhook POST (200 to all)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.requests.append(
                        ({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def transaction_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(orjson.loads(body)["id"] for _, body in self.requests)


def files_under(*roots: Any) -> Iterator[Any]:
    """Every regular file below the given directories (or the files themselves)."""
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file())
