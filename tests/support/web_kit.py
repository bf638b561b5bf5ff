"""Apps for API tests, wired as the API process wires them (``paycore.bootstrap``): a context's
dependencies on the app's state, its routes mounted under a prefix, its hot routes on the fast
lane (or not, to reach the framework routes that document them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from paycore.platform.settings import Settings
from paycore.platform.web.app import create_app
from paycore.platform.web.fastlane import FastLane, FastRoute
from paycore.platform.web.routes import Routes, mount
from paycore.schema import upgrade


def served(
    mounts: Sequence[tuple[Routes, str]],
    *,
    state: dict[str, Any],
    fast_lane: bool = True,
    middleware: Sequence[tuple[type[Any], dict[str, Any]]] = (),
    max_body: int = 1 << 20,
) -> FastAPI:
    fast: dict[tuple[str, str], FastRoute] = {}
    outer = [*middleware, *([(FastLane, {"routes": fast})] if fast_lane else [])]
    app = create_app("test", middleware=outer, max_body=max_body)
    for name, value in state.items():
        setattr(app.state, name, value)
    for routes, prefix in mounts:
        mount(app, routes, prefix, fast)
    return app


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (its lifespan: every context mounted) and a client calling it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://paycore") as http:
            yield http


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An answer that is an RFC 9457 problem of ``status`` and ``code``: its body."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    return body


def routes_of(app: FastAPI, methods: set[str]) -> set[tuple[str, str]]:
    """The (method, path) pairs the app routes, included routers' routes with their prefix."""
    return {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        for method in (route.methods or set()) & methods
    }


def migrated_settings(folder: Path, broker_url: str, **settings: str) -> Settings:
    """Settings of a platform on a migrated SQLite database in ``folder`` and the broker at
    ``broker_url``, for building its apps (``bootstrap.build_api`` and ``build_worker``)."""
    url = f"sqlite+aiosqlite:///{folder / 'paycore.db'}"
    upgrade(url)
    return Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=folder, database_url=url, broker_url=broker_url, **settings
    )
