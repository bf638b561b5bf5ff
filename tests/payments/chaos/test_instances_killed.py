"""Durability of the payments service: while payments flow through two API instances, one
instance and the worker are killed with SIGKILL (the worker twice, restarted); in the Rinha
deployment's topology (``accept=local``: each instance records and dispatches its own payments)
each instance is killed in turn, while it answers 202s and has calls to the processors in
flight, and restarted (answering once a payment is in its journal, as that deployment does, or
once it is committed). Afterwards every payment that got a 2xx was processed exactly once,
nothing else was invented, and the backend's summary equals the processors'."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from procs import until
from rinha import Deployment, Processors, backend_summary, deployment, running_processors

pytestmark = pytest.mark.timeout(600)
SENDERS = 6
PER_SENDER = 400


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Deployment, Processors]]:
    with (
        running_processors(tmp_path) as processors,
        deployment(tmp_path, processors) as running,
    ):
        processors.reset()
        processors.set("default", delay=20)  # calls in flight when the worker dies
        yield running, processors


def send(
    service: Deployment,
    sender: int,
    accepted: set[str],
    unknown: set[str],
    count: int = PER_SENDER,
    pause: float = 0.002,
) -> None:
    """Post ``count`` payments alternately to both instances; a refused connection (the
    instance is gone) moves on to the other one; a request cut mid-way is 'unknown' (maybe
    taken)."""
    with httpx.Client(timeout=10) as http:
        for n in range(count):
            cid = str(uuid.uuid4())
            body = {"correlationId": cid, "amount": 10.01}
            for target in ((n + sender) % 2, (n + sender + 1) % 2):
                try:
                    answer = http.post(service.base(target) + "/payments", json=body)
                except httpx.ConnectError:
                    continue  # never reached the instance: try the other one
                except httpx.HTTPError:
                    unknown.add(cid)
                    break
                if answer.is_success:
                    accepted.add(cid)
                else:
                    unknown.add(cid)
                break
            time.sleep(pause)


@pytest.fixture(params=["journal", "commit"])
def local(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Deployment, Processors]]:
    """The Rinha deployment: each instance answers once the payment is in its journal (as
    ``deploy/rinha`` runs it), or once it is committed."""
    with (
        running_processors(tmp_path) as processors,
        deployment(
            tmp_path, processors, accept="local", journal=request.param == "journal"
        ) as running,
    ):
        processors.reset()
        processors.set("default", delay=300)  # many calls in flight when an instance dies
        yield running, processors


def senders(
    service: Deployment, accepted: set[str], unknown: set[str], **pacing: float
) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=send, args=(service, i, accepted, unknown), kwargs=pacing)
        for i in range(SENDERS)
    ]
    for thread in threads:
        thread.start()
    return threads


def settle_and_check(
    service: Deployment,
    processors: Processors,
    accepted: set[str],
    unknown: set[str],
    sent: int = SENDERS * PER_SENDER,
) -> None:
    """Every accepted payment ends processed once, nothing invented, the summaries equal."""
    assert len(accepted) > sent * 0.9

    def settled() -> bool:
        done = set(processed_ids(service)) >= accepted
        return done and backend_summary(service.base(1)) == processors.summaries()

    until(settled, timeout=120, every=0.5)
    processed = processed_ids(service)
    assert len(processed) == len(set(processed))
    assert set(processed) <= accepted | unknown  # nothing invented
    ours = backend_summary(service.base(1))
    assert ours == processors.summaries()  # each stored by exactly one processor, once
    assert sum(count for count, _ in ours.values()) == len(processed)


def processed_ids(service: Deployment) -> list[str]:
    """Every processed payment in the deployment's databases (one, or one per instance)."""
    found = []
    for path in service.databases():
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT correlation_id FROM payments WHERE processed").fetchall()
        found += [r[0] for r in rows]
    return found


def test_every_accepted_payment_is_processed_once_after_kills(
    service: tuple[Deployment, Processors],
) -> None:
    running, processors = service
    accepted: set[str] = set()
    unknown: set[str] = set()
    threads = senders(running, accepted, unknown)
    until(lambda: len(accepted) > 300, timeout=60)
    running.worker.kill()
    until(lambda: len(accepted) > 700, timeout=60)
    running.apis[0].kill()
    running.restart_worker()
    until(lambda: len(accepted) > 1200, timeout=60)
    running.worker.kill()
    time.sleep(0.5)
    running.restart_worker()
    for thread in threads:
        thread.join()
    settle_and_check(running, processors, accepted, unknown)


def test_instances_that_dispatch_their_own_payments_lose_none_when_killed(
    local: tuple[Deployment, Processors],
) -> None:
    running, processors = local
    accepted: set[str] = set()
    unknown: set[str] = set()
    # about 20 s of payments: each instance killed in turn while the other one serves, and
    # restarted (it waits for its dispatcher's lease to expire, 6 s) while payments still flow
    per_sender = 1200
    threads = senders(running, accepted, unknown, count=per_sender, pause=0.01)
    for victim, after in ((0, 300), (1, 3500)):
        until(lambda after=after: len(accepted) > after, timeout=60)
        with sqlite3.connect(running.database(victim)) as db:
            owned = db.execute(
                "SELECT count(*) FROM payments WHERE owner = ? AND NOT processed",
                (f"api{victim + 1}",),
            ).fetchone()[0]
        running.apis[victim].kill()  # mid-answer, with its own payments still to dispatch
        assert owned > 0, f"api{victim + 1} had nothing left to dispatch when killed"
        time.sleep(0.5)
        running.restart_api(victim)  # takes its unfinished payments up again
    assert any(thread.is_alive() for thread in threads)  # the kills happened mid-run
    for thread in threads:
        thread.join()
    settle_and_check(running, processors, accepted, unknown, sent=SENDERS * per_sender)
