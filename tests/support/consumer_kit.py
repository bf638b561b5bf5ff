"""One consumer of a context driven as its worker drives it, in process: messages handed to
``Consumer.handle_batch`` with a fast retry policy, the handler's calls counted, the dead
letters it left read back; and a database that goes away for a while."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Consumer, RetryPolicy, Verdicts
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.uow import Database, Transaction

FAST = RetryPolicy(max_attempts=5, base_seconds=0.001, max_seconds=0.002)
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
"""Nested past any parser's recursion limit (Python's ``json`` raises ``RecursionError``)."""


class FlakyDatabase(Database):
    """A database whose next ``failures`` transactions fail at their end as a lost connection
    does (what the handler wrote is rolled back)."""

    def __init__(self, engine: Any, failures: int) -> None:
        super().__init__(engine)
        self.failures = failures

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with super().transaction() as tx:
            yield tx
            if self.failures > 0:
                self.failures -= 1
                raise OperationalError("COMMIT", None, ConnectionResetError("server closed"))


@dataclass
class Outcome:
    calls: int  # how many times the handler ran
    letters: list[tuple[str, str, int]]  # dead letters: (message id, error, attempts)


async def consume(
    db: Database,
    consumer: tuple[Subscription, BatchHandler],
    bodies: Sequence[bytes],
    *,
    bus: Any,
) -> Outcome:
    """Hand ``bodies`` to the consumer as one batch (message ids ``m0``, ``m1``…)."""
    subscription, handler = consumer
    calls = 0

    async def counted(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        nonlocal calls
        calls += 1
        return await handler(tx, deliveries)

    running = Consumer(subscription=subscription, handler=counted, db=db, bus=bus, retry=FAST)
    topic = subscription.topic
    await running.handle_batch(
        [Delivery(topic, body, f"m{n}", None, {}) for n, body in enumerate(bodies)]
    )
    query = select(dead_letters.c.message_id, dead_letters.c.error, dead_letters.c.attempts)
    async with db.connect() as conn:
        letters = [(r.message_id, r.error, r.attempts) for r in await conn.execute(query)]
    return Outcome(calls, letters)


def refused_at_once(outcome: Outcome) -> str:
    """The reason of the one dead letter a message left after one attempt (failing otherwise)."""
    assert outcome.calls == 1, outcome
    [(message_id, reason, attempts)] = outcome.letters
    assert (message_id, attempts) == ("m0", 1)
    return reason
