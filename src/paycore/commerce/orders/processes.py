"""The commerce order API in a process: customers, products, orders on the fast lane, and the
challenge's queries proxied to the analytics service. Its entry point: ``mount_api``."""

from __future__ import annotations

from fastapi import FastAPI

from paycore.commerce.orders import api, service
from paycore.commerce.orders.client import AnalyticsClient
from paycore.commerce.settings import CommerceSettings
from paycore.platform.runtime import Runtime
from paycore.platform.web.http import FastRoute


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
    orders = service.order_writer(runtime.db)
    runtime.closers += [orders.stop, client.close]
    place = api.order_placer(runtime.db, orders)
    fast_routes.update({("POST", prefix + p): place for p in api.ORDER_PATHS})
    app.include_router(api.router(runtime.db, place, client), prefix=prefix)
