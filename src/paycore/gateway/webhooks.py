"""Webhook deliveries: each decided transaction of an account with a webhook URL is POSTed
there, signed (``Paycore-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`` under the
account's webhook secret), retried with exponential backoff and jitter until a 2xx answer or
the last attempt.

Deliveries are rows (queued in the same commit that decided the transaction) leased by a
dispatcher for the time of the POST, so several dispatchers never send one at once. A
dispatcher that dies after the receiver answered but before recording it sends that delivery
again after the lease: receivers deduplicate by the ``Paycore-Delivery`` header (or the
transaction id in the body).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.gateway import store
from paycore.gateway.crypto import CardKeyError, Keyring, sign_webhook
from paycore.platform.clock import utcnow
from paycore.platform.consumer import RetryPolicy

log = logging.getLogger(__name__)

webhook_attempts = Counter(
    "paycore_gateway_webhook_attempts_total", "Webhook POST attempts", ["outcome"]
)
LEASE = timedelta(seconds=60)


class WebhookDispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        keyring: Keyring,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy,
        poll_seconds: float = 0.2,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._keyring = keyring
        self._client = client
        self._retry = retry
        self._poll = poll_seconds
        self._batch = batch
        self._clock = clock
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Look for due deliveries now (after a commit that queued some)."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled."""
        while True:
            if await self.dispatch_once() < self._batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._wake.wait()

    async def dispatch_once(self) -> int:
        """Send every due delivery of one batch; returns how many were attempted."""
        async with self._engine.begin() as conn:
            rows = await store.claim_deliveries(conn, self._clock(), LEASE, self._batch)
            sealed = await store.webhook_secrets(conn, list({r.account_id for r in rows}))
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._send(r, sealed.get(r.account_id)) for r in rows))
        async with self._engine.begin() as conn:
            for row, (code, error) in zip(rows, outcomes, strict=True):
                await store.finish_delivery(conn, row.id, self._after(row, code, error))
        return len(rows)

    async def _send(self, row: Any, sealed: str | None) -> tuple[int | None, str | None]:
        if sealed is None:
            return None, "the account has no webhook secret"
        try:
            secret = self._keyring.open_text(sealed, row.account_id)
        except CardKeyError as exc:
            return None, f"cannot open the webhook secret: {exc}"
        headers = {
            "content-type": "application/json",
            "user-agent": "paycore-webhooks/1",
            "paycore-delivery": row.id,
            "paycore-event": "transaction.decided",
            "paycore-signature": sign_webhook(secret, int(time.time()), row.body),
        }
        try:
            answer = await self._client.post(row.url, content=row.body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if answer.is_success:
            return answer.status_code, None
        return answer.status_code, f"answered {answer.status_code}"

    def _after(self, row: Any, code: int | None, error: str | None) -> dict[str, Any]:
        attempts, now = row.attempts + 1, self._clock()
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": code}
        if error is None:
            webhook_attempts.labels("delivered").inc()
            return {**values, "status": store.DELIVERED, "delivered_at": now, "last_error": None}
        values["last_error"] = error
        if attempts >= self._retry.max_attempts:
            webhook_attempts.labels("failed").inc()
            log.warning(
                "webhook delivery failed for good",
                extra={"delivery": row.id, "attempts": attempts, "error": error},
            )
            return {**values, "status": store.DELIVERY_FAILED}
        webhook_attempts.labels("retry").inc()
        delay = timedelta(seconds=self._retry.delay(attempts))
        return {**values, "next_attempt_at": now + delay}
