"""The commerce order API in a process: customers, products, orders on the fast lane, and the
challenge's queries proxied to the analytics service. Its entry point: ``mount_api``."""

from __future__ import annotations

from fastapi import FastAPI

from paycore.commerce.orders import api, service, store
from paycore.commerce.orders.client import AnalyticsClient
from paycore.commerce.settings import CommerceSettings
from paycore.platform.runtime import Runtime
from paycore.platform.web.fastlane import FastRoute
from paycore.platform.web.routes import mount


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
    catalog = store.Catalog(runtime.db.connect)
    app.state.commerce = api.OrdersApi(runtime.db, catalog, orders, client)
    mount(app, api.routes, prefix, fast_routes)
