"""Gateway in a process: merchant accounts, transactions on the fast lane and the live dashboard
(API); the transaction processor and/or the result applier with webhooks (worker,
``PAYCORE_GATEWAY_WORKER_ROLES``)."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI

from paycore.gateway import api, consumers, dashboard, live, messages, service
from paycore.gateway.auth import Authenticator, Guard, Sessions
from paycore.gateway.settings import GatewaySettings
from paycore.gateway.webhook_targets import WebhookTargets
from paycore.gateway.webhooks import WebhookDispatcher
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.messaging.consumer import RetryPolicy
from paycore.platform.runtime import Processes, Runtime, consume
from paycore.platform.settings import Settings
from paycore.platform.web.fastlane import FastRoute
from paycore.platform.web.ratelimit import FailureLimit, RateLimiter
from paycore.platform.web.routes import mount

log = logging.getLogger(__name__)


def _gateway_keys(settings: Settings) -> tuple[Keyring, Hasher]:
    """The card keys and the pepper (configured, or generated: ``PROCESSES.secrets``)."""
    return Keyring.parse(settings.card_keys), Hasher(settings.secret_pepper)


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = GatewaySettings()
    keyring, hasher = _gateway_keys(runtime.settings)
    writer = service.transaction_writer(runtime.db)
    runtime.closers.append(writer.stop)
    guard = Guard(
        Authenticator(runtime.db.connect, hasher),
        RateLimiter(settings.rate_per_second, settings.rate_burst),
        Sessions(hasher.session_key, int(settings.session_hours * 3600)),
        FailureLimit(settings.auth_failures, settings.auth_window_seconds),
    )
    app.state.gateway = api.GatewayApi(
        db=runtime.db,
        guard=guard,
        writer=writer,
        keyring=keyring,
        hasher=hasher,
        admin_token=runtime.settings.admin_token,
        targets=WebhookTargets(allow_private=settings.webhook_allow_private),
        cookie_path=prefix or "/",
        poll_seconds=settings.live_poll_ms / 1000,
        stream_seconds=settings.stream_seconds,
        slots=live.Slots(settings.max_streams),
    )
    mount(app, api.routes, prefix, fast_routes)
    mount(app, dashboard.routes, prefix, fast_routes)


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    """The transaction processor and/or the result applier with its webhook dispatcher
    (``PAYCORE_GATEWAY_WORKER_ROLES``); the processor has its own consumer group."""
    settings = GatewaySettings()
    keyring, _ = _gateway_keys(runtime.settings)
    roles = settings.worker_roles.split(",")
    if "processor" in roles:
        consume(runtime, *consumers.processor(keyring, batch=runtime.settings.consumer_batch))
    if "results" in roles:
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        dispatcher = WebhookDispatcher(
            runtime.db,
            keyring,
            client,
            retry=RetryPolicy(
                settings.webhook_max_attempts,
                settings.webhook_backoff_ms / 1000,
                settings.webhook_backoff_max_ms / 1000,
            ),
            targets=WebhookTargets(allow_private=settings.webhook_allow_private),
        )
        subscription, handler = consumers.results(
            batch=runtime.settings.consumer_batch, webhooks_queued=dispatcher.notify
        )
        consume(runtime, subscription, handler)
        runtime.spawn("gateway-webhooks", dispatcher.run)
        runtime.spawn("gateway-seal-holders", lambda: _seal_clear_holders(runtime, keyring))
        runtime.closers.append(client.aclose)


async def _seal_clear_holders(runtime: Runtime, keyring: Keyring) -> None:
    """Once at start: seal the holder names earlier releases stored in clear."""
    if sealed := await service.seal_clear_holders(runtime.db, keyring):
        log.info("sealed holder names stored in clear", extra={"transactions": sealed})


def card_retention() -> dict[str, float]:
    """The broker keeps sealed cards (``transactions`` and its dead letters) this long."""
    seconds = GatewaySettings().card_retention_hours * 3600
    return {topic: seconds for topic in messages.CARD_TOPICS}


PROCESSES = Processes(
    api=mount_api,
    worker=start_worker,
    settings=(GatewaySettings,),
    secrets=("card_keys", "secret_pepper"),
    retention=card_retention,
)
