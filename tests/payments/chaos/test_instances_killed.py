"""Durability of the payments service: while payments flow through two API instances, one
instance and the worker are killed with SIGKILL (the worker twice, restarted). Afterwards every
payment that got a 2xx was processed exactly once, nothing else was invented, and the backend's
summary equals the processors'."""

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


def send(service: Deployment, sender: int, accepted: set[str], unknown: set[str]) -> None:
    """Post payments alternately to both instances; a refused connection (the instance is
    gone) moves on to the other one; a request cut mid-way is 'unknown' (maybe taken)."""
    with httpx.Client(timeout=10) as http:
        for n in range(PER_SENDER):
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
            time.sleep(0.002)


def processed_ids(service: Deployment) -> list[str]:
    with sqlite3.connect(service.work / "payments.db") as db:
        rows = db.execute("SELECT correlation_id FROM payments WHERE processed").fetchall()
    return [r[0] for r in rows]


def test_every_accepted_payment_is_processed_once_after_kills(
    service: tuple[Deployment, Processors],
) -> None:
    running, processors = service
    accepted: set[str] = set()
    unknown: set[str] = set()
    senders = [
        threading.Thread(target=send, args=(running, i, accepted, unknown)) for i in range(SENDERS)
    ]
    for thread in senders:
        thread.start()
    until(lambda: len(accepted) > 300, timeout=60)
    running.worker.kill()
    until(lambda: len(accepted) > 700, timeout=60)
    running.apis[0].kill()
    running.restart_worker()
    until(lambda: len(accepted) > 1200, timeout=60)
    running.worker.kill()
    time.sleep(0.5)
    running.restart_worker()
    for thread in senders:
        thread.join()

    assert len(accepted) > SENDERS * PER_SENDER * 0.9

    def settled() -> bool:
        done = set(processed_ids(running)) >= accepted
        return done and backend_summary(running.base(1)) == processors.summaries()

    until(settled, timeout=120, every=0.5)
    processed = processed_ids(running)
    assert len(processed) == len(set(processed))
    assert set(processed) <= accepted | unknown  # nothing invented
    ours = backend_summary(running.base(1))
    assert ours == processors.summaries()  # each stored by exactly one processor, once
    assert sum(count for count, _ in ours.values()) == len(processed)
