"""Gateway in a process: merchant accounts, transactions on the fast lane and the live dashboard
(API); the transaction processor and/or the result applier with webhooks (worker,
``PAYCORE_GATEWAY_WORKER_ROLES``)."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI

from paycore.config import Settings
from paycore.gateway import api, consumers, dashboard, live, service
from paycore.gateway.auth import Authenticator, Sessions
from paycore.gateway.webhook_targets import WebhookTargets
from paycore.gateway.webhooks import WebhookDispatcher
from paycore.platform.cards import Hasher, Keyring, is_development
from paycore.platform.messaging.consumer import RetryPolicy
from paycore.platform.persistence.batching import GroupCommit
from paycore.platform.web.http import FastRoute
from paycore.platform.web.ratelimit import FailureLimit, RateLimiter
from paycore.runtime import Runtime, consume

log = logging.getLogger(__name__)


def _gateway_keys(settings: Settings) -> tuple[Keyring, Hasher]:
    if is_development(settings.card_keys, settings.secret_pepper):
        log.warning(
            "PAYCORE_CARD_KEYS or PAYCORE_SECRET_PEPPER is not set: the gateway uses "
            "development keys that anyone can read; set both outside development"
        )
    return Keyring.parse(settings.card_keys), Hasher(settings.secret_pepper)


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = runtime.settings
    keyring, hasher = _gateway_keys(settings)
    writer = GroupCommit(service.transaction_writer(runtime.engine, runtime.relay.handoff))
    runtime.closers.append(writer.stop)
    guard = api.Guard(
        Authenticator(runtime.engine.connect, hasher),
        RateLimiter(settings.gateway_rate_per_second, settings.gateway_rate_burst),
        Sessions(hasher.session_key, int(settings.gateway_session_hours * 3600)),
        FailureLimit(settings.gateway_auth_failures, settings.gateway_auth_window_seconds),
    )
    accept = api.transaction_acceptor(guard, writer, keyring=keyring, hasher=hasher)
    fast_routes[("POST", prefix + api.TRANSACTION_PATH)] = accept
    app.include_router(
        api.router(
            runtime.engine,
            guard,
            accept,
            admin_token=settings.admin_token,
            keyring=keyring,
            hasher=hasher,
            targets=WebhookTargets(allow_private=settings.gateway_webhook_allow_private),
        ),
        prefix=prefix,
    )
    app.include_router(
        dashboard.router(
            runtime.engine,
            guard,
            cookie_path=prefix or "/",
            poll_seconds=settings.gateway_live_poll_ms / 1000,
            stream_seconds=settings.gateway_stream_seconds,
            slots=live.Slots(settings.gateway_max_streams),
        ),
        prefix=prefix,
    )


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    """The transaction processor and/or the result applier with its webhook dispatcher
    (``PAYCORE_GATEWAY_WORKER_ROLES``); the processor has its own consumer group."""
    settings = runtime.settings
    keyring, _ = _gateway_keys(settings)
    roles = settings.gateway_worker_roles.split(",")
    if "processor" in roles:
        consume(runtime, *consumers.processor(keyring, batch=settings.consumer_batch))
    if "results" in roles:
        client = httpx.AsyncClient(
            timeout=settings.gateway_webhook_timeout_seconds, follow_redirects=False
        )
        dispatcher = WebhookDispatcher(
            runtime.engine,
            keyring,
            client,
            retry=RetryPolicy(
                settings.gateway_webhook_max_attempts,
                settings.gateway_webhook_backoff_ms / 1000,
                settings.gateway_webhook_backoff_max_ms / 1000,
            ),
            targets=WebhookTargets(allow_private=settings.gateway_webhook_allow_private),
        )
        queued = consumers.WebhooksQueued(dispatcher.notify)
        subscription, handler = consumers.results(batch=settings.consumer_batch, webhooks=queued)
        consume(runtime, subscription, handler, after_commit=queued.after_commit)
        runtime.spawn("gateway-webhooks", dispatcher.run)
        runtime.closers.append(client.aclose)
