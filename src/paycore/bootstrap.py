"""Composition root: settings -> runtime (engine, broker, relay, caches) -> the API and worker
apps of the chosen contexts, found in the registry (``paycore.contexts``).

Every process is an ASGI app (so each has /healthz, /readyz and /metrics): ``api`` serves the
public routes of the chosen contexts and relays their outbox; ``worker`` runs the chosen
contexts' consumers and serves their internal routes. A process imports the contexts it serves
and no other.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from fastapi import FastAPI
from pydantic import ValidationError

from paycore import contexts
from paycore.platform import keystore
from paycore.platform.messaging.brokers import open_bus
from paycore.platform.persistence import probe
from paycore.platform.runtime import Processes, Runtime
from paycore.platform.settings import Settings, problems
from paycore.platform.web.app import alive, create_app, install_probes
from paycore.platform.web.fastlane import FastLane, FastRoute
from paycore.platform.web.idempotency import IdempotencyMiddleware

log = logging.getLogger(__name__)


class ConfigurationError(ValueError):
    """A setting of a chosen context is refused; the message names each variable."""


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, tables, compiled statements, warmed
    caches) out of the cyclic garbage collector's reach: a full collection then walks only
    what requests create, instead of pausing the event loop for every start-up object."""
    gc.collect()
    gc.freeze()


def load(names: list[str]) -> dict[str, Processes]:
    """The chosen contexts' processes, their settings checked now: a bad value stops the
    process before it serves anything."""
    loaded = {name: contexts.processes(name) for name in contexts.chosen(names)}
    refused = []
    for part in loaded.values():
        for settings in part.settings:
            try:
                settings()
            except ValidationError as exc:
                refused += problems(exc, settings)
    if refused:
        raise ConfigurationError("; ".join(refused))
    return loaded


def with_secrets(settings: Settings, parts: Iterable[Processes]) -> tuple[Settings, Path | None]:
    """The settings with the secrets the parts need (``keystore.resolve``), and the file they
    were generated into just now, if they were."""
    needed = sorted({name for part in parts for name in part.secrets})
    try:
        return keystore.resolve(settings, needed)
    except keystore.MissingSecrets as exc:
        raise ConfigurationError(str(exc)) from None


def retention_of(parts: Iterable[Processes]) -> dict[str, float]:
    """How long the broker may keep the messages of the topics the parts limit."""
    return {topic: age for p in parts if p.retention for topic, age in p.retention().items()}


def generated_notice(path: Path) -> str:
    return (
        f"generated the card keys, the pepper and the service token into {path} (mode 0600); "
        "back it up: without it sealed card data cannot be opened and account secrets stop "
        "matching"
    )


def _secured(settings: Settings, parts: Iterable[Processes]) -> Settings:
    resolved, generated = with_secrets(settings, parts)
    if generated is not None:
        log.warning(generated_notice(generated))
    return resolved


async def reach_servers(settings: Settings) -> None:
    """What a process checks before it serves: its database answers and was migrated, and its
    broker answers; else an ``OperatorError`` saying which (at start-up inside the server, the
    same failure would be a traceback in the log)."""
    await probe.revisions(settings.effective_database_url)
    bus = await open_bus(settings.effective_broker_url, client_name="paycore-check")
    await bus.close()


def build_api(
    settings: Settings, context_names: list[str] | None = None, *, root: bool = False
) -> FastAPI:
    """The public API: each context's routes under ``/{context}``, or one context at the root."""
    parts = {name: p for name, p in load(context_names or []).items() if p.api is not None}
    settings = _secured(settings, parts.values())
    retention = retention_of(parts.values())
    if root and len(parts) != 1:
        raise ValueError("--root serves exactly one context with a public API")
    state: dict[str, Runtime] = {}
    fast_routes: dict[tuple[str, str], FastRoute] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-api", topic_retention=retention)
        state["runtime"] = runtime
        for name, part in parts.items():
            assert part.api is not None
            await part.api(app, runtime, "" if root else f"/{name}", fast_routes)
        install_probes(app, await runtime.readiness())
        fast_routes[("GET", "/healthz")] = FastRoute(alive, "/healthz")
        freeze_startup_heap()
        try:
            yield
        finally:
            await runtime.close()

    idempotency = (
        IdempotencyMiddleware,
        # keyed: a stored fingerprint of a body with card data must not be reversible
        {
            "db": lambda: state["runtime"].db,
            "secret": settings.secret_pepper.encode(),
            "lease_seconds": settings.idempotency_lease_seconds,
        },
    )
    fast_lane = (FastLane, {"routes": fast_routes})
    return create_app(
        "paycore API",
        lifespan=lifespan,
        middleware=[idempotency, fast_lane],
        max_body=settings.max_body_bytes,
    )


def build_worker(settings: Settings, context_names: list[str] | None = None) -> FastAPI:
    """Consumers of the chosen contexts, plus their internal HTTP routes."""
    parts = [p for p in load(context_names or []).values() if p.worker is not None]
    settings = _secured(settings, parts)
    retention = retention_of(parts)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(
            settings, client_name="paycore-worker", topic_retention=retention
        )
        for part in parts:
            assert part.worker is not None
            await part.worker(app, runtime)
        install_probes(app, await runtime.readiness())
        freeze_startup_heap()
        try:
            yield
        finally:
            await runtime.close()

    middleware = [m for part in parts for m in part.worker_middleware]
    return create_app(
        "paycore worker", lifespan=lifespan, middleware=middleware, max_body=settings.max_body_bytes
    )
