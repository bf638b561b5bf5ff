"""Composition root: settings -> engine, broker, relay, caches -> the API and worker apps.

Every process is an ASGI app (so each has /healthz, /readyz and /metrics): ``api`` serves the
public routers of the chosen contexts and relays their outbox; ``worker`` runs the chosen
contexts' consumers and serves their internal routes (commerce: the analytics service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce import analytics_api as commerce_analytics_api
from paycore.commerce import api as commerce_api
from paycore.commerce import service as commerce_service
from paycore.commerce.analytics import Board, MemoryBoard, RedisBoard
from paycore.commerce.analytics_client import AnalyticsClient
from paycore.commerce.archive import Archive
from paycore.commerce.consumers import analytics_subscriptions
from paycore.config import Settings
from paycore.fulfillment import api as fulfillment_api
from paycore.fulfillment import consumers as fulfillment_consumers
from paycore.fulfillment.service import OrderCache
from paycore.gateway import api as gateway_api
from paycore.gateway import consumers as gateway_consumers
from paycore.gateway import dashboard as gateway_dashboard
from paycore.gateway import service as gateway_service
from paycore.gateway.auth import Authenticator, Sessions
from paycore.gateway.crypto import Hasher, Keyring, is_development
from paycore.gateway.webhooks import WebhookDispatcher
from paycore.payments import api as payments_api
from paycore.payments import consumers as payments_consumers
from paycore.payments import service as payments_service
from paycore.payments.domain import Router
from paycore.payments.processors import ProcessorClient
from paycore.platform import retention
from paycore.platform.batching import GroupCommit
from paycore.platform.bus import Bus, Subscription, create_bus
from paycore.platform.consumer import BatchHandler, Consumer, RetryPolicy
from paycore.platform.db import create_engine
from paycore.platform.http import FastLane, FastRoute, create_app, install_probes
from paycore.platform.idempotency import IdempotencyMiddleware
from paycore.platform.ids import uuid7
from paycore.platform.outbox import Relay
from paycore.platform.ratelimit import RateLimiter

log = logging.getLogger(__name__)

CONTEXTS = ("commerce", "fulfillment", "gateway", "payments")


@dataclass
class Runtime:
    """The connections one process holds, and its background tasks."""

    settings: Settings
    engine: AsyncEngine
    bus: Bus
    relay: Relay
    redis: Redis | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @classmethod
    async def open(cls, settings: Settings, *, client_name: str) -> Runtime:
        engine = create_engine(settings.effective_database_url)
        bus = create_bus(settings.effective_broker_url, client_name=client_name)
        await bus.connect()
        relay = Relay(
            engine, bus, poll_seconds=settings.outbox_poll_ms / 1000, batch=settings.outbox_batch
        )
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        runtime = cls(settings, engine, bus, relay, redis)
        runtime.spawn("outbox-relay", relay.run)
        runtime.spawn(
            "retention",
            lambda: retention.run(
                engine,
                inbox_for=timedelta(hours=settings.inbox_retention_hours),
                keys_for=timedelta(hours=settings.idempotency_retention_hours),
            ),
        )
        return runtime

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a background loop, restarting it with backoff if it crashes."""
        self.tasks.append(asyncio.create_task(_supervise(name, run), name=name))

    async def readiness(self) -> dict[str, Callable[[], Awaitable[None]]]:
        async def database() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        checks: dict[str, Callable[[], Awaitable[None]]] = {"database": database}
        if self.redis is not None:
            redis = self.redis

            async def ping() -> None:
                await redis.ping()

            checks["redis"] = ping
        return checks

    async def close(self) -> None:
        """Stop taking work, finish in-flight batches, run the closers (final writes),
        flush the outbox, then close connections."""
        await self.bus.stop_consuming()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for closer in self.closers:
            try:
                await closer()
            except Exception:
                log.exception(
                    "shutdown step failed", extra={"step": getattr(closer, "__qualname__", "")}
                )
        await self.relay.stop()
        await self.bus.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


async def _supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    failures = 0
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            delay = min(10.0, 0.2 * 2**failures)
            log.exception(
                "background task crashed; restarting", extra={"task": name, "delay": delay}
            )
            await asyncio.sleep(delay)


def _check_contexts(contexts: list[str]) -> list[str]:
    unknown = set(contexts) - set(CONTEXTS)
    if unknown:
        raise ValueError(f"unknown context(s) {sorted(unknown)}; known: {', '.join(CONTEXTS)}")
    return contexts or list(CONTEXTS)


def build_api(
    settings: Settings, contexts: list[str] | None = None, *, root: bool = False
) -> FastAPI:
    """The public API: each context's router under ``/{context}``, or one context at the root."""
    chosen = _check_contexts(contexts or [])
    if root and len(chosen) != 1:
        raise ValueError("--root serves exactly one context")
    state: dict[str, Runtime] = {}
    fast_routes: dict[tuple[str, str], FastRoute] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-api")
        state["runtime"] = runtime
        if "commerce" in chosen:
            _mount_commerce(app, runtime, "" if root else "/commerce", fast_routes)
        if "fulfillment" in chosen:
            await _mount_fulfillment(app, runtime, "" if root else "/fulfillment")
        if "payments" in chosen:
            _mount_payments(app, runtime, "" if root else "/payments", fast_routes)
        if "gateway" in chosen:
            _mount_gateway(app, runtime, "" if root else "/gateway", fast_routes)
        install_probes(app, await runtime.readiness())
        try:
            yield
        finally:
            await runtime.close()

    idempotency = (
        IdempotencyMiddleware,
        # keyed: a stored fingerprint of a body with card data must not be reversible
        {"engine": lambda: state["runtime"].engine, "secret": settings.secret_pepper.encode()},
    )
    fast_lane = (FastLane, {"routes": fast_routes})
    return create_app("paycore API", lifespan=lifespan, middleware=[idempotency, fast_lane])


def _mount_commerce(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = runtime.settings
    client = AnalyticsClient(
        settings.effective_analytics_url,
        settings.service_token,
        timeout=settings.http_timeout_seconds,
        retries=settings.http_retries,
    )
    orders = GroupCommit(
        runtime.engine, commerce_service.write_orders, after_commit=runtime.relay.notify
    )
    runtime.closers += [orders.stop, client.close]
    place = commerce_api.order_placer(runtime.engine, orders)
    fast_routes.update({("POST", prefix + p): place for p in commerce_api.ORDER_PATHS})
    app.include_router(commerce_api.router(runtime.engine, place, client), prefix=prefix)


async def _mount_fulfillment(app: FastAPI, runtime: Runtime, prefix: str) -> None:
    cache = OrderCache(
        runtime.engine.connect, fulfillment_api.render, size=runtime.settings.fulfillment_cache_size
    )
    warmed = await cache.warm()
    log.info("fulfillment cache warmed", extra={"orders": warmed})
    app.include_router(fulfillment_api.router(cache, runtime.bus), prefix=prefix)


def _mount_payments(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    take = payments_api.payment_taker(runtime.bus)
    fast_routes[("POST", prefix + payments_api.PAYMENT_PATH)] = take
    app.include_router(payments_api.router(runtime.engine, take), prefix=prefix)


def _gateway_keys(settings: Settings) -> tuple[Keyring, Hasher]:
    if is_development(settings.card_keys, settings.secret_pepper):
        log.warning(
            "PAYCORE_CARD_KEYS or PAYCORE_SECRET_PEPPER is not set: the gateway uses "
            "development keys that anyone can read; set both outside development"
        )
    return Keyring.parse(settings.card_keys), Hasher(settings.secret_pepper)


def _mount_gateway(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = runtime.settings
    keyring, hasher = _gateway_keys(settings)
    writer = GroupCommit(
        runtime.engine, gateway_service.write_transactions, after_commit=runtime.relay.notify
    )
    runtime.closers.append(writer.stop)
    guard = gateway_api.Guard(
        Authenticator(runtime.engine.connect, hasher),
        RateLimiter(settings.gateway_rate_per_second, settings.gateway_rate_burst),
        Sessions(hasher.session_key, int(settings.gateway_session_hours * 3600)),
    )
    accept = gateway_api.transaction_acceptor(guard, writer, keyring=keyring, hasher=hasher)
    fast_routes[("POST", prefix + gateway_api.TRANSACTION_PATH)] = accept
    app.include_router(
        gateway_api.router(
            runtime.engine,
            guard,
            accept,
            admin_token=settings.admin_token,
            keyring=keyring,
            hasher=hasher,
        ),
        prefix=prefix,
    )
    app.include_router(
        gateway_dashboard.router(
            runtime.engine,
            guard,
            cookie_path=prefix or "/",
            poll_seconds=settings.gateway_live_poll_ms / 1000,
            stream_seconds=settings.gateway_stream_seconds,
            login_limiter=RateLimiter(1.0, 10),
        ),
        prefix=prefix,
    )


def build_worker(settings: Settings, contexts: list[str] | None = None) -> FastAPI:
    """Consumers of the chosen contexts, plus their internal HTTP routes."""
    chosen = _check_contexts(contexts or [])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-worker")
        if "commerce" in chosen:
            await _start_analytics(app, runtime)
        if "fulfillment" in chosen:
            subscription, handler = fulfillment_consumers.ingestion(
                batch=runtime.settings.fulfillment_batch
            )
            _consume(runtime, subscription, handler)
        if "payments" in chosen:
            await _start_payments(runtime)
        if "gateway" in chosen:
            _start_gateway(runtime)
        install_probes(app, await runtime.readiness())
        try:
            yield
        finally:
            await runtime.close()

    return create_app(
        "paycore worker",
        lifespan=lifespan,
        middleware=[(commerce_analytics_api.RefuseBrowserOrigins, {})],
    )


def _consume(
    runtime: Runtime,
    subscription: Subscription,
    handler: BatchHandler,
    after_commit: Callable[[], None] | None = None,
) -> None:
    """Run a consumer for the subscription, with the configured retry policy; ``after_commit``
    runs after each committed batch (besides waking the outbox relay)."""
    settings = runtime.settings
    consumer = Consumer(
        subscription=subscription,
        handler=handler,
        engine=runtime.engine,
        bus=runtime.bus,
        retry=RetryPolicy(
            settings.consumer_max_attempts,
            settings.consumer_backoff_ms / 1000,
            settings.consumer_backoff_max_ms / 1000,
        ),
        after_commit=_both(runtime.relay.notify, after_commit),
    )
    runtime.spawn(f"consume:{subscription.queue_name}", consumer.run)


def _both(first: Callable[[], None], then: Callable[[], None] | None) -> Callable[[], None]:
    if then is None:
        return first

    def run() -> None:
        first()
        then()

    return run


def _start_gateway(runtime: Runtime) -> None:
    """The transaction processor and/or the result applier with its webhook dispatcher
    (``PAYCORE_GATEWAY_WORKER_ROLES``); the processor has its own consumer group."""
    settings = runtime.settings
    keyring, _ = _gateway_keys(settings)
    roles = settings.gateway_worker_roles.split(",")
    if "processor" in roles:
        _consume(runtime, *gateway_consumers.processor(keyring, batch=settings.consumer_batch))
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
        )
        queued = gateway_consumers.WebhooksQueued(dispatcher.notify)
        subscription, handler = gateway_consumers.results(
            batch=settings.consumer_batch, webhooks=queued
        )
        _consume(runtime, subscription, handler, after_commit=queued.after_commit)
        runtime.spawn("gateway-webhooks", dispatcher.run)
        runtime.closers.append(client.aclose)


async def _start_payments(runtime: Runtime) -> None:
    """The deployment's payments worker: intake from the topic, the dispatcher, the poller."""
    settings = runtime.settings
    payers = {
        "default": ProcessorClient(
            "default",
            settings.payments_default_url,
            max_connections=settings.payments_max_in_flight,
        ),
        "fallback": ProcessorClient(
            "fallback",
            settings.payments_fallback_url,
            max_connections=settings.payments_max_in_flight,
        ),
    }
    lease = payments_service.Lease(
        runtime.engine, f"{socket.gethostname()}:{os.getpid()}:{uuid7()}", on_lost=_stop_process
    )
    await lease.acquire()
    runtime.spawn("payments-lease", lease.keep)
    router = Router(slow_ms=settings.payments_slow_ms)
    dispatcher = payments_service.Dispatcher(
        runtime.engine, payers, router, max_in_flight=settings.payments_max_in_flight
    )
    recovered = await dispatcher.recover()
    log.info("payments worker started", extra={"unfinished": recovered})
    runtime.spawn("payments-dispatcher", dispatcher.run)
    runtime.spawn(
        "processor-health",
        lambda: payments_service.poll_health(
            payers, router, dispatcher, every=settings.payments_health_seconds
        ),
    )
    subscription, handler, after_commit = payments_consumers.intake(dispatcher)
    _consume(runtime, subscription, handler, after_commit)

    async def finish() -> None:
        await dispatcher.drain(timeout=5.0)
        for payer in payers.values():
            await payer.close()
        await lease.release()

    runtime.closers.append(finish)


def _stop_process() -> None:
    """Stop this process as SIGTERM would (graceful); its supervisor starts a new one."""
    os.kill(os.getpid(), signal.SIGTERM)


async def _start_analytics(app: FastAPI, runtime: Runtime) -> None:
    settings = runtime.settings
    board: Board
    if runtime.redis is not None:
        board = RedisBoard(runtime.redis, ttl_seconds=settings.analytics_ttl_seconds)
    else:
        board = MemoryBoard()
        counted = await commerce_service.rebuild_board(runtime.engine, board)
        log.info("analytics board rebuilt in memory", extra={"orders": counted})
    archive = Archive(settings.archive_dir)
    for subscription, handler in analytics_subscriptions(board, batch=settings.consumer_batch):
        _consume(runtime, subscription, handler)

    async def archive_loop() -> None:
        while True:
            await commerce_service.flush_archive(runtime.engine, archive)
            await asyncio.sleep(settings.archive_flush_seconds)

    async def final_flush() -> None:
        await commerce_service.flush_archive(runtime.engine, archive)

    runtime.spawn("archive", archive_loop)
    runtime.closers.append(final_flush)
    app.include_router(
        commerce_analytics_api.router(runtime.engine, board, archive, settings.service_token)
    )
