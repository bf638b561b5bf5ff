"""Webhook deliveries: each decided transaction of an account with a webhook URL is POSTed
there, signed (``Paycore-Signature: t=<unix>,v1=<HMAC-SHA256 of "t.body">`` under the
account's webhook secret), retried with exponential backoff and jitter until a 2xx answer or
the last attempt. A URL the SSRF rules refuse at send time (:mod:`webhook_targets`: its name
now resolves to a private address, say) fails the delivery at once, with the reason.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from paycore.gateway import metrics, store
from paycore.gateway.crypto import sign_webhook
from paycore.gateway.webhook_targets import TargetRefused, WebhookTargets
from paycore.platform.cards import CardKeyError, Keyring
from paycore.platform.clock import utcnow
from paycore.platform.messaging.consumer import RetryPolicy
from paycore.platform.persistence.uow import Database

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to: the receiver's status code, the error if it failed, and
    whether trying again is pointless (the URL is refused)."""

    code: int | None = None
    error: str | None = None
    final: bool = False


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        keyring: Keyring,
        client: httpx.AsyncClient,
        *,
        retry: RetryPolicy,
        targets: WebhookTargets | None = None,
        poll_seconds: float = 0.2,
        batch: int = 50,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._client = client
        self._retry = retry
        self._targets = targets or WebhookTargets(allow_private=False)
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
        async with self._db.transaction() as tx:
            rows = await store.claim_deliveries(tx, self._clock(), LEASE, self._batch)
            sealed = await store.webhook_secrets(tx.conn, list({r.account_id for r in rows}))
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._send(r, sealed.get(r.account_id)) for r in rows))
        async with self._db.transaction() as tx:
            for row, attempt in zip(rows, outcomes, strict=True):
                await store.finish_delivery(tx, row.id, self._after(row, attempt))
        return len(rows)

    async def _send(self, row: Any, sealed: str | None) -> Attempt:
        if sealed is None:
            return Attempt(error="the account has no webhook secret")
        try:
            secret = self._keyring.open_text(sealed, row.account_id)
        except CardKeyError as exc:
            return Attempt(error=f"cannot open the webhook secret: {exc}")
        try:
            target = await self._targets.pin(row.url)
        except TargetRefused as exc:
            return Attempt(error=f"blocked: {exc}"[:500], final=True)
        except OSError as exc:
            return Attempt(error=f"cannot resolve the webhook host: {exc}"[:500])
        headers = {
            **target.headers,
            "content-type": "application/json",
            "user-agent": "paycore-webhooks/1",
            "paycore-delivery": row.id,
            "paycore-event": "transaction.decided",
            "paycore-signature": sign_webhook(secret, int(time.time()), row.body),
        }
        try:
            answer = await self._client.post(
                target.url, content=row.body, headers=headers, extensions=target.extensions
            )
        except httpx.HTTPError as exc:
            return Attempt(error=f"{type(exc).__name__}: {exc}"[:500])
        if answer.is_success:
            return Attempt(answer.status_code)
        return Attempt(answer.status_code, f"answered {answer.status_code}")

    def _after(self, row: Any, attempt: Attempt) -> store.AttemptOutcome:
        attempts, now, error = row.attempts + 1, self._clock(), attempt.error
        if error is None:
            metrics.webhook_attempts.labels("delivered").inc()
            return store.AttemptOutcome(
                attempts, attempt.code, None, status=store.DELIVERED, delivered_at=now
            )
        if attempt.final or attempts >= self._retry.max_attempts:
            metrics.webhook_attempts.labels("blocked" if attempt.final else "failed").inc()
            log.warning(
                "webhook delivery failed for good",
                extra={"delivery": row.id, "attempts": attempts, "error": error},
            )
            return store.AttemptOutcome(attempts, attempt.code, error, status=store.DELIVERY_FAILED)
        metrics.webhook_attempts.labels("retry").inc()
        delay = timedelta(seconds=self._retry.delay(attempts))
        return store.AttemptOutcome(attempts, attempt.code, error, next_attempt_at=now + delay)
