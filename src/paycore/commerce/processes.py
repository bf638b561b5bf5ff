"""Commerce in a process: the order API (``orders``) in an API process, the analytics service
(``analytics``) in a worker process; two sub-packages, each with its own entry point."""

from __future__ import annotations

from paycore.commerce.analytics.api import RefuseBrowserOrigins
from paycore.commerce.analytics.processes import start_worker
from paycore.commerce.orders.processes import mount_api
from paycore.commerce.settings import CommerceSettings
from paycore.platform.runtime import Processes

PROCESSES = Processes(
    api=mount_api,
    worker=start_worker,
    # the analytics service is internal: no browser may call it
    worker_middleware=((RefuseBrowserOrigins, {}),),
    settings=(CommerceSettings,),
    secrets=("service_token",),  # the order API and the analytics service share it
)
