"""The commerce context's part of ``paycore up``."""

from __future__ import annotations

from paycore.platform.settings import Settings


def banner(settings: Settings, base: str, simulated: bool) -> list[str]:
    analytics = f"http://{settings.host}:{settings.worker_port}"
    return [
        f"commerce   {base}/commerce/orders   (customers, products, orders)",
        f"analytics  {analytics}   (internal, service token)",
    ]
