"""Commerce in a process: the public API (orders on the fast lane, queries proxied to the
analytics service) and the analytics service itself (worker)."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI

from paycore.commerce import analytics_api, api, service
from paycore.commerce.analytics import Board, MemoryBoard, RedisBoard
from paycore.commerce.analytics_client import AnalyticsClient
from paycore.commerce.archive import Archive
from paycore.commerce.consumers import analytics_subscriptions
from paycore.commerce.settings import CommerceSettings
from paycore.platform.persistence.batching import GroupCommit
from paycore.platform.runtime import Processes, Runtime, consume
from paycore.platform.web.http import FastRoute

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 60.0  # monthly reports aggregate their month: not on every flush


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = runtime.settings
    analytics_url = CommerceSettings().analytics_url or (
        f"http://{settings.host}:{settings.worker_port}"
    )
    client = AnalyticsClient(
        analytics_url,
        settings.service_token,
        timeout=settings.http_timeout_seconds,
        retries=settings.http_retries,
    )
    orders = GroupCommit(service.order_writer(runtime.engine, runtime.relay.handoff))
    runtime.closers += [orders.stop, client.close]
    place = api.order_placer(runtime.engine, orders)
    fast_routes.update({("POST", prefix + p): place for p in api.ORDER_PATHS})
    app.include_router(api.router(runtime.engine, place, client), prefix=prefix)


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    """The analytics service: rankings (Redis, or in memory rebuilt from the database), the
    monthly archive, and its internal HTTP routes."""
    settings, commerce = runtime.settings, CommerceSettings()
    board: Board
    if runtime.redis is not None:
        board = RedisBoard(runtime.redis, ttl_seconds=commerce.analytics_ttl_seconds)
    else:
        board = MemoryBoard()
        counted = await service.rebuild_board(runtime.engine, board)
        log.info("analytics board rebuilt in memory", extra={"orders": counted})
    archive = Archive(settings.data_dir / "archive")
    for subscription, handler in analytics_subscriptions(board, batch=settings.consumer_batch):
        consume(runtime, subscription, handler)

    async def archive_loop() -> None:
        reported = 0.0
        while True:
            due = time.monotonic() - reported >= REPORT_EVERY_SECONDS
            await service.flush_archive(runtime.engine, archive, reports=due)
            if due:
                reported = time.monotonic()
            await asyncio.sleep(commerce.archive_flush_seconds)

    async def final_flush() -> None:
        await service.flush_archive(runtime.engine, archive)

    runtime.spawn("archive", archive_loop)
    runtime.closers.append(final_flush)
    app.include_router(analytics_api.router(runtime.engine, board, archive, settings.service_token))


PROCESSES = Processes(
    api=mount_api,
    worker=start_worker,
    # the analytics service is internal: no browser may call it
    worker_middleware=((analytics_api.RefuseBrowserOrigins, {}),),
    settings=(CommerceSettings,),
)
