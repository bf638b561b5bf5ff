"""Composition root: settings -> runtime (engine, broker, relay, caches) -> the API and worker
apps of the chosen contexts.

Every process is an ASGI app (so each has /healthz, /readyz and /metrics): ``api`` serves the
public routers of the chosen contexts and relays their outbox; ``worker`` runs the chosen
contexts' consumers and serves their internal routes (commerce: the analytics service). How
each context is assembled lives in ``paycore.wiring.<context>``, imported only when chosen.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from fastapi import FastAPI

from paycore.config import Settings
from paycore.platform.web.http import FastLane, FastRoute, alive, create_app, install_probes
from paycore.platform.web.idempotency import IdempotencyMiddleware
from paycore.runtime import Runtime

CONTEXTS = ("commerce", "fulfillment", "gateway", "payments")


def _check_contexts(contexts: list[str]) -> list[str]:
    unknown = set(contexts) - set(CONTEXTS)
    if unknown:
        raise ValueError(f"unknown context(s) {sorted(unknown)}; known: {', '.join(CONTEXTS)}")
    return contexts or list(CONTEXTS)


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, tables, compiled statements, warmed
    caches) out of the cyclic garbage collector's reach: a full collection then walks only
    what requests create, instead of pausing the event loop for every start-up object."""
    gc.collect()
    gc.freeze()


def _wiring(context: str) -> ModuleType:
    return importlib.import_module(f"paycore.wiring.{context}")


def build_api(
    settings: Settings, contexts: list[str] | None = None, *, root: bool = False
) -> FastAPI:
    """The public API: each context's router under ``/{context}``, or one context at the root."""
    chosen = _check_contexts(contexts or [])
    if root and len(chosen) != 1:
        raise ValueError("--root serves exactly one context")
    wirings = {name: _wiring(name) for name in chosen}
    state: dict[str, Runtime] = {}
    fast_routes: dict[tuple[str, str], FastRoute] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-api")
        state["runtime"] = runtime
        for name, wiring in wirings.items():
            await wiring.mount_api(app, runtime, "" if root else f"/{name}", fast_routes)
        install_probes(app, await runtime.readiness())
        fast_routes[("GET", "/healthz")] = alive
        freeze_startup_heap()
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


def build_worker(settings: Settings, contexts: list[str] | None = None) -> FastAPI:
    """Consumers of the chosen contexts, plus their internal HTTP routes."""
    chosen = _check_contexts(contexts or [])
    wirings = {name: _wiring(name) for name in chosen}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings, client_name="paycore-worker")
        for wiring in wirings.values():
            await wiring.start_worker(app, runtime)
        install_probes(app, await runtime.readiness())
        freeze_startup_heap()
        try:
            yield
        finally:
            await runtime.close()

    middleware: list[tuple[type[Any], dict[str, Any]]] = []
    if "commerce" in wirings:  # the analytics service is internal: no browser may call it
        from paycore.commerce.analytics_api import RefuseBrowserOrigins

        middleware.append((RefuseBrowserOrigins, {}))
    return create_app("paycore worker", lifespan=lifespan, middleware=middleware)
