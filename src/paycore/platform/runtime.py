"""What one paycore process holds (its engine, broker, relay and caches, its supervised
background tasks), how it runs a consumer, and what a context contributes to a process
(``Processes``, declared in each context's ``processes.py``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic_settings import BaseSettings
from sqlalchemy import text

from paycore.platform import retention
from paycore.platform.messaging.brokers import open_bus
from paycore.platform.messaging.bus import Bus, Retention, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Consumer, RetryPolicy
from paycore.platform.messaging.relay import Relay
from paycore.platform.observability import tracing
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings
from paycore.platform.web.fastlane import FastRoute

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The connections one process holds, and its background tasks."""

    settings: Settings
    db: Database
    bus: Bus
    relay: Relay
    redis: Redis | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    stop_export: Callable[[], None] | None = None  # flushes and stops the export of spans

    @classmethod
    async def open(
        cls, settings: Settings, *, client_name: str, topic_retention: Retention | None = None
    ) -> Runtime:
        engine = create_engine(settings.effective_database_url)
        bus = await open_bus(
            settings.effective_broker_url, client_name=client_name, retention=topic_retention
        )
        relay = Relay(
            engine,
            bus,
            poll_seconds=settings.outbox_poll_ms / 1000,
            idle_poll_seconds=settings.outbox_idle_poll_ms / 1000,
            batch=settings.outbox_batch,
        )
        redis = None
        if settings.redis_url:  # imported only when used: ~20 MB of a process's memory
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
        runtime = cls(settings, Database(engine, relay.handoff), bus, relay, redis)
        if endpoint := settings.otlp_traces_endpoint:
            runtime.stop_export = tracing.export_otlp(endpoint, client_name)
        runtime.spawn("outbox-relay", relay.run)
        runtime.spawn(
            "retention",
            lambda: retention.run(
                runtime.db,
                inbox_for=timedelta(hours=settings.inbox_retention_hours),
                keys_for=timedelta(hours=settings.idempotency_retention_hours),
                topics=topic_retention,
            ),
        )
        return runtime

    def spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a background loop, restarting it with backoff if it crashes."""
        self.tasks.append(asyncio.create_task(supervise(name, run), name=name))

    async def readiness(self) -> dict[str, Callable[[], Awaitable[None]]]:
        async def database() -> None:
            async with self.db.connect() as conn:
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
        flush the outbox, then close connections and flush the spans."""
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
        await self.db.engine.dispose()
        if self.stop_export is not None:
            await asyncio.to_thread(self.stop_export)


async def supervise(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run`` until it returns, restarting it with backoff whenever it crashes."""
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


def consume(runtime: Runtime, subscription: Subscription, handler: BatchHandler) -> None:
    """Run a consumer for the subscription, with the configured retry policy and linger."""
    settings = runtime.settings
    consumer = Consumer(
        subscription=subscription,
        handler=handler,
        db=runtime.db,
        bus=runtime.bus,
        retry=RetryPolicy(
            settings.consumer_max_attempts,
            settings.consumer_backoff_ms / 1000,
            settings.consumer_backoff_max_ms / 1000,
        ),
        linger_seconds=settings.effective_consumer_linger_ms / 1000,
    )
    runtime.spawn(f"consume:{subscription.queue_name}", consumer.run)


ApiPart = Callable[[FastAPI, Runtime, str, dict[tuple[str, str], FastRoute]], Awaitable[None]]
"""Adds a context's public routes to an API process under a prefix (and its hot routes to the
fast lane)."""
WorkerPart = Callable[[FastAPI, Runtime], Awaitable[None]]
"""Starts a context's consumers and background loops in a worker process, and adds its internal
routes."""


@dataclass(frozen=True)
class Processes:
    """What a context runs, found by the registry (``paycore.contexts``) in the context's
    ``processes.py``: its part of an API process and of a worker process, the ASGI middleware
    (class, options) its worker's routes need, its settings classes (checked when a
    process starts, so a bad value stops it with a clear message), and the shared secrets it
    needs (names of ``Settings`` fields: ``card_keys``, ``secret_pepper``, ``service_token``;
    see ``paycore.platform.keystore``), and how long the broker may keep the messages of some
    of its topics (read at start; see ``messaging.bus``)."""

    api: ApiPart | None = None
    worker: WorkerPart | None = None
    worker_middleware: tuple[tuple[type[Any], dict[str, Any]], ...] = ()
    settings: tuple[type[BaseSettings], ...] = ()
    secrets: tuple[str, ...] = ()
    retention: Callable[[], Retention] | None = None
