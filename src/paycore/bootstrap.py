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
from collections.abc import AsyncIterator

from fastapi import FastAPI
from pydantic import ValidationError

from paycore import contexts
from paycore.platform.runtime import Processes, Runtime
from paycore.platform.settings import Settings, problems
from paycore.platform.web.app import alive, create_app, install_probes
from paycore.platform.web.fastlane import FastLane, FastRoute
from paycore.platform.web.idempotency import IdempotencyMiddleware


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


def build_api(
    settings: Settings, context_names: list[str] | None = None, *, root: bool = False
) -> FastAPI:
    """The public API: each context's routes under ``/{context}``, or one context at the root."""
    parts = {name: p for name, p in load(context_names or []).items() if p.api is not None}
    if root and len(parts) != 1:
        raise ValueError("--root serves exactly one context with a public API")
    state: dict[str, Runtime] = {}
    fast_routes: dict[tuple[str, str], FastRoute] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-api")
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

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-worker")
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
