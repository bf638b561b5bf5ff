"""HTTP client of the two external payment processors (the Rinha processor API)."""

from __future__ import annotations

import time

import orjson

from paycore.payments.domain import Health, Outcome, requested_at_text
from paycore.platform.money import json_number
from paycore.platform.web.client import ConnectFailed, HttpClient


class ProcessorClient:
    """One processor: ``pay`` tells what the call showed; ``health`` its own report (or None
    when it would not say, e.g. 429 for asking more than once per 5 seconds)."""

    def __init__(self, name: str, base_url: str, *, max_connections: int = 1000) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._http = HttpClient(self.base_url, max_connections=max_connections)

    async def pay(
        self, correlation_id: str, amount_cents: int, requested_at_ms: int, *, timeout: float
    ) -> tuple[Outcome, int]:
        """Ask the processor to take the payment; returns the outcome and the elapsed ms."""
        body = orjson.dumps(
            {
                "correlationId": correlation_id,
                "amount": json_number(amount_cents),
                "requestedAt": requested_at_text(requested_at_ms),
            }
        )
        started = time.perf_counter()
        try:
            status, _ = await self._http.request("POST", "/payments", body, timeout=timeout)
        except ConnectFailed:
            return Outcome.REFUSED, _since(started)  # never sent: nothing was stored
        except (TimeoutError, ConnectionError):
            return Outcome.UNKNOWN, _since(started)
        elapsed = _since(started)
        if status in (200, 201, 202, 204, 422):
            return Outcome.STORED, elapsed
        if status in (429, 500, 503):
            return Outcome.REFUSED, elapsed
        return Outcome.UNKNOWN, elapsed  # anything else: do not guess, ask again later

    async def health(self, *, timeout: float = 2.0) -> Health | None:
        try:
            status, body = await self._http.request(
                "GET", "/payments/service-health", timeout=timeout
            )
            if status != 200:
                return None
            data = orjson.loads(body)
            return Health(bool(data["failing"]), int(data["minResponseTime"]))
        except (TimeoutError, ConnectionError, KeyError, TypeError, ValueError):
            return None

    async def close(self) -> None:
        await self._http.close()


def _since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
