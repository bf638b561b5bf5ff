"""HTTP client of the internal analytics service, used by the public API (timeouts, retries)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from paycore.platform.errors import DomainError
from paycore.platform.observability.logging import correlation_id

log = logging.getLogger(__name__)


class AnalyticsUnavailable(DomainError):
    """The analytics service did not answer (retried); try again shortly."""

    code = "analytics-unavailable"
    status = 503

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"the analytics service did not answer: {reason}", headers={"Retry-After": "1"}
        )


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str


class AnalyticsClient:
    def __init__(
        self, base_url: str, token: str, *, timeout: float = 2.0, retries: int = 2
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 1.0)),
            headers={"Authorization": f"Bearer {token}"},
        )
        self._retries = retries

    async def get(self, *segments: str | int, params: dict[str, Any] | None = None) -> Answer:
        """GET the path made of ``segments`` (each quoted: a ``?`` or ``/`` in one stays in
        it), with retries on connection errors, timeouts and 5xx (reads are safe to repeat)."""
        path = "".join("/" + quote(str(segment), safe="") for segment in segments)
        headers = {"X-Correlation-ID": correlation_id.get()} if correlation_id.get() else {}
        for attempt in range(self._retries + 1):
            try:
                response = await self._client.get(path, params=params, headers=headers)
                if response.status_code < 500 or attempt == self._retries:
                    return Answer(
                        response.status_code,
                        response.content,
                        response.headers.get("content-type", "application/json"),
                    )
            except httpx.TransportError as exc:
                if attempt == self._retries:
                    raise AnalyticsUnavailable(str(exc) or type(exc).__name__) from exc
            log.warning(
                "analytics call failed, retrying", extra={"path": path, "attempt": attempt + 1}
            )
            await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._client.aclose()
