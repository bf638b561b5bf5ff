"""Fulfillment in a process: order lookup from a warmed cache (API), ingestion (worker)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from paycore.fulfillment import api, consumers
from paycore.fulfillment.service import OrderCache
from paycore.fulfillment.settings import FulfillmentSettings
from paycore.platform.runtime import Processes, Runtime, consume
from paycore.platform.web.fastlane import FastRoute
from paycore.platform.web.routes import mount

log = logging.getLogger(__name__)


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    cache = OrderCache(runtime.db.connect, api.render, size=FulfillmentSettings().cache_size)
    warmed = await cache.warm()
    log.info("fulfillment cache warmed", extra={"orders": warmed})
    app.state.fulfillment = api.FulfillmentApi(cache, runtime.bus, runtime.db)
    mount(app, api.routes, prefix, fast_routes)


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    consume(runtime, *consumers.ingestion(batch=FulfillmentSettings().batch))


PROCESSES = Processes(api=mount_api, worker=start_worker, settings=(FulfillmentSettings,))
