"""Payments in a process: the Rinha contract (API), and who dispatches the payments. With
``accept=broker`` the deployment's payments worker does (intake from the topic, the dispatcher,
the health poller, under a lease); with ``accept=local`` each API instance dispatches the
payments it recorded, under a lease named after it, and the instances share the processors'
health (ADR 0017)."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI

from paycore.payments import api, consumers, metrics, service, store
from paycore.payments.domain import Payment, Router
from paycore.payments.journal import Journal
from paycore.payments.processors import ProcessorClient
from paycore.payments.settings import PaymentsSettings
from paycore.platform.failures import OperatorError
from paycore.platform.ids import uuid7
from paycore.platform.persistence import probe
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database
from paycore.platform.runtime import Processes, Runtime, consume
from paycore.platform.web.fastlane import FastRoute
from paycore.platform.web.routes import mount

log = logging.getLogger(__name__)


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    settings = PaymentsSettings()
    if settings.accept == "local":
        instance = _instance(settings)
        databases = service.Databases(runtime.db, await _siblings(runtime, settings))
        accept = await _dispatch_here(runtime, settings, databases, instance)
    else:
        if settings.journal:
            raise OperatorError(
                "PAYCORE_PAYMENTS_JOURNAL is for PAYCORE_PAYMENTS_ACCEPT=local (the API "
                "records the payments it journals); unset it, or set accept=local"
            )
        databases = service.Databases(runtime.db)
        accept = functools.partial(service.accept, runtime.bus)
    app.state.payments = api.PaymentsApi(
        databases,
        accept,
        admin_token=runtime.settings.admin_token,
        open_purge=settings.open_purge,
    )
    mount(app, api.routes, prefix, fast_routes)


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    """The deployment's payments worker: intake from the topic, the dispatcher, the poller."""
    settings = PaymentsSettings()
    if settings.accept == "local":
        raise OperatorError(
            "PAYCORE_PAYMENTS_ACCEPT=local: the API instances dispatch the payments they "
            "record; run no payments worker (or set PAYCORE_PAYMENTS_ACCEPT=broker)"
        )
    holder = _holder()
    dispatcher, finish = await _dispatcher(runtime, settings, holder, store.DISPATCHER, None)
    runtime.spawn(
        "processor-health",
        lambda: service.poll_health(dispatcher, every=settings.health_seconds),
    )
    consume(runtime, *consumers.intake(dispatcher))
    runtime.closers.append(finish)


async def _siblings(runtime: Runtime, settings: PaymentsSettings) -> tuple[Database, ...]:
    """The other instances' databases (``PAYCORE_PAYMENTS_SIBLINGS``), closed with the
    process; each must answer and be migrated (else an ``OperatorError`` naming it: a SQLite
    file not there yet is not created)."""
    for url in settings.sibling_urls:
        await probe.revisions(url)
    siblings = tuple(Database(create_engine(url)) for url in settings.sibling_urls)
    for sibling in siblings:
        runtime.closers.append(sibling.engine.dispose)
    return siblings


def _instance(settings: PaymentsSettings) -> str:
    """This API instance's name: it owns the payments it records."""
    instance = settings.instance or socket.gethostname()
    if len(instance) > 48:
        raise OperatorError(
            f"the host name {instance!r} is too long to name this payments instance: set "
            "PAYCORE_PAYMENTS_INSTANCE (at most 48 characters, stable across restarts)"
        )
    return instance


async def _dispatch_here(
    runtime: Runtime, settings: PaymentsSettings, databases: service.Databases, instance: str
) -> Callable[[Payment], Awaitable[None]]:
    """``accept=local``: this instance records payments and dispatches them; returns how its
    API accepts one."""
    holder = _holder()
    role = f"{store.DISPATCHER}:{instance}"
    dispatcher, finish = await _dispatcher(runtime, settings, holder, role, instance)
    journal = Journal(Path(settings.journal), instance) if settings.journal else None
    recorder = service.Recorder(
        runtime.db, dispatcher, owner=instance, siblings=databases.siblings, journal=journal
    )
    journaled = recorder.start()
    if journaled:
        log.info("payments journaled before a restart", extra={"journaled": journaled})
    runtime.spawn(
        "processor-health",
        lambda: service.share_health(databases, holder, dispatcher, every=settings.health_seconds),
    )

    async def stop() -> None:
        await recorder.stop()  # what was accepted is committed and queued, then dispatched
        await finish()

    runtime.closers.insert(0, stop)  # before the siblings' engines are disposed
    return recorder.accept


async def _dispatcher(
    runtime: Runtime,
    settings: PaymentsSettings,
    holder: str,
    role: str,
    owner: str | None,
) -> tuple[service.Dispatcher, Callable[[], Awaitable[None]]]:
    """A running dispatcher of the payments of ``owner`` (all of them if None), once it holds
    the lease ``role``, with what was left unfinished queued; and how to stop it."""
    payers = {
        name: ProcessorClient(name, url, max_connections=settings.max_in_flight)
        for name, url in (("default", settings.default_url), ("fallback", settings.fallback_url))
    }
    lease = service.Lease(runtime.db, holder, role=role, on_lost=_stop_process)
    await lease.acquire()
    runtime.spawn("payments-lease", lease.keep)
    router = Router(slow_ms=settings.slow_ms)
    dispatcher = service.Dispatcher(
        runtime.db, payers, router, max_in_flight=settings.max_in_flight, owner=owner
    )
    metrics.payments_waiting.set_function(lambda: dispatcher.waiting)
    recovered = await dispatcher.recover()
    log.info("payments dispatcher started", extra={"unfinished": recovered, "role": role})
    runtime.spawn("payments-dispatcher", dispatcher.run)

    async def finish() -> None:
        await dispatcher.drain(timeout=5.0)
        for payer in payers.values():
            await payer.close()
        await lease.release()

    return dispatcher, finish


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid7()}"


def _stop_process() -> None:
    """Stop this process as SIGTERM would (graceful); its supervisor starts a new one."""
    os.kill(os.getpid(), signal.SIGTERM)


PROCESSES = Processes(api=mount_api, worker=start_worker, settings=(PaymentsSettings,))
