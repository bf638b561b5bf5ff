"""HTTP client of the two external payment processors (the Rinha processor API)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import orjson

from paycore.payments.domain import Outcome, requested_at_text
from paycore.platform.money import json_number


@dataclass(frozen=True, slots=True)
class Health:
    failing: bool
    min_response_ms: int


class ProcessorClient:
    """One processor: ``pay`` tells what the call showed; ``health`` its own report (or None
    when it would not say, e.g. 429 for asking more than once per 5 seconds)."""

    def __init__(self, name: str, base_url: str, *, max_connections: int = 1000) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"content-type": "application/json"},
        )

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
            response = await self._http.post("/payments", content=body, timeout=timeout)
        except httpx.ConnectError:
            return Outcome.REFUSED, _since(started)  # never reached it: nothing was stored
        except httpx.HTTPError:
            return Outcome.UNKNOWN, _since(started)
        elapsed = _since(started)
        if response.status_code in (200, 201, 202, 204, 422):
            return Outcome.STORED, elapsed
        if response.status_code in (429, 500, 503):
            return Outcome.REFUSED, elapsed
        return Outcome.UNKNOWN, elapsed  # anything else: do not guess, ask again later

    async def health(self, *, timeout: float = 2.0) -> Health | None:
        try:
            response = await self._http.get("/payments/service-health", timeout=timeout)
            if response.status_code != 200:
                return None
            data = orjson.loads(response.content)
            return Health(bool(data["failing"]), int(data["minResponseTime"]))
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None

    async def close(self) -> None:
        await self._http.aclose()


def _since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
