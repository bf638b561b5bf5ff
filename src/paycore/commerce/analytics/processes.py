"""The commerce analytics service in a process: its consumers, the rankings, the monthly
archive and its internal HTTP routes. Its entry point: ``start_worker``."""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI

from paycore.commerce.analytics import api, service
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import Board, MemoryBoard, RedisBoard
from paycore.commerce.analytics.consumers import analytics_subscriptions
from paycore.commerce.settings import CommerceSettings
from paycore.platform.runtime import Runtime, consume

log = logging.getLogger(__name__)

REPORT_EVERY_SECONDS = 60.0  # monthly reports aggregate their month: not on every flush


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    """The analytics service: rankings (Redis, or in memory rebuilt from the database), the
    monthly archive, and its internal HTTP routes."""
    settings, commerce = runtime.settings, CommerceSettings()
    board: Board
    if runtime.redis is not None:
        board = RedisBoard(runtime.redis, ttl_seconds=commerce.analytics_ttl_seconds)
    else:
        board = MemoryBoard()
        counted = await service.rebuild_board(runtime.db, board)
        log.info("analytics board rebuilt in memory", extra={"orders": counted})
    archive = Archive(settings.data_dir / "archive")
    archive.claim()
    for subscription, handler in analytics_subscriptions(board, batch=settings.consumer_batch):
        consume(runtime, subscription, handler)

    async def archive_loop() -> None:
        reported = 0.0
        while True:
            due = time.monotonic() - reported >= REPORT_EVERY_SECONDS
            await service.flush_archive(runtime.db, archive, reports=due)
            if due:
                reported = time.monotonic()
            await asyncio.sleep(commerce.archive_flush_seconds)

    async def final_flush() -> None:
        await service.flush_archive(runtime.db, archive)

    runtime.spawn("archive", archive_loop)
    runtime.closers.append(final_flush)
    app.state.analytics = api.AnalyticsApi(runtime.db, board, archive, settings.service_token)
    app.include_router(api.routes.router)
