"""Payments in a process: the Rinha contract (API) and the deployment's payments worker:
intake from the topic, the dispatcher, the health poller, under a lease."""

from __future__ import annotations

import logging
import os
import signal
import socket

from fastapi import FastAPI

from paycore.payments import api, consumers, metrics, service
from paycore.payments.domain import Router
from paycore.payments.processors import ProcessorClient
from paycore.payments.settings import PaymentsSettings
from paycore.platform.ids import uuid7
from paycore.platform.runtime import Processes, Runtime, consume
from paycore.platform.web.fastlane import FastRoute
from paycore.platform.web.routes import mount

log = logging.getLogger(__name__)


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = PaymentsSettings()
    app.state.payments = api.PaymentsApi(
        runtime.db,
        runtime.bus,
        admin_token=runtime.settings.admin_token,
        open_purge=settings.open_purge,
    )
    mount(app, api.routes, prefix, fast_routes)


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    """The deployment's payments worker: intake from the topic, the dispatcher, the poller."""
    settings = PaymentsSettings()
    payers = {
        "default": ProcessorClient(
            "default",
            settings.default_url,
            max_connections=settings.max_in_flight,
        ),
        "fallback": ProcessorClient(
            "fallback",
            settings.fallback_url,
            max_connections=settings.max_in_flight,
        ),
    }
    lease = service.Lease(
        runtime.db, f"{socket.gethostname()}:{os.getpid()}:{uuid7()}", on_lost=_stop_process
    )
    await lease.acquire()
    runtime.spawn("payments-lease", lease.keep)
    router = Router(slow_ms=settings.slow_ms)
    dispatcher = service.Dispatcher(
        runtime.db, payers, router, max_in_flight=settings.max_in_flight
    )
    metrics.payments_waiting.set_function(lambda: dispatcher.waiting)
    recovered = await dispatcher.recover()
    log.info("payments worker started", extra={"unfinished": recovered})
    runtime.spawn("payments-dispatcher", dispatcher.run)
    runtime.spawn(
        "processor-health",
        lambda: service.poll_health(payers, router, dispatcher, every=settings.health_seconds),
    )
    consume(runtime, *consumers.intake(dispatcher))

    async def finish() -> None:
        await dispatcher.drain(timeout=5.0)
        for payer in payers.values():
            await payer.close()
        await lease.release()

    runtime.closers.append(finish)


def _stop_process() -> None:
    """Stop this process as SIGTERM would (graceful); its supervisor starts a new one."""
    os.kill(os.getpid(), signal.SIGTERM)


PROCESSES = Processes(api=mount_api, worker=start_worker, settings=(PaymentsSettings,))
