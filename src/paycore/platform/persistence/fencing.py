"""Fencing of idempotent requests: the effect of one ``Idempotency-Key`` commits at most once,
however many requests run under it (a retry that took over the claim of a request that
stalled, or of a process that died).

The request serving a key (``web.idempotency``) binds its ``Claim`` to the task that serves it.
Whatever commits on that task's behalf — a unit of work (``uow``), an item of a batch writer
(``batch``) — writes the key's row into ``idempotency_effects`` in the same transaction. The
row's primary key is the key itself, so a second effect under the same key fails on it and
rolls back whole; that request is answered ``ClaimLost``. A unique row, not a conditional
update of the claim, because it fences the batch writer's one-statement batches too: the
database refuses the statement, and the writer's item-by-item retry isolates the loser.

A claim whose effect committed is marked (``committed``); the request's later transactions
write no second row. The row also tells a retry that the effect exists when the answer was
never stored (the process died between the two).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.platform.errors import DomainError
from paycore.platform.persistence.db import UtcDateTime, metadata

effects = Table(
    "idempotency_effects",
    metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("owner", String(32), nullable=False),
    Column("committed_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("scope", "key"),
)
COLUMNS = ("scope", "key", "owner", "committed_at")


class ClaimLost(DomainError):
    """Another request with this Idempotency-Key applied its effect first; retry for its
    answer."""

    code = "idempotency-key-in-progress"
    status = 409

    def __init__(self) -> None:
        super().__init__(
            "Another request with this Idempotency-Key took effect first; retry to get its answer.",
            headers={"Retry-After": "1"},
        )


@dataclass(slots=True)
class Claim:
    """A request's hold on a key: ``owner`` is the request's own random token."""

    scope: str
    key: str
    owner: str
    task: asyncio.Task[Any] | None = field(default=None, repr=False)
    committed: bool = False  # an effect of this request has committed

    def row(self, now: datetime) -> dict[str, Any]:
        """Its row in ``effects``."""
        return {"scope": self.scope, "key": self.key, "owner": self.owner, "committed_at": now}


_claim: ContextVar[Claim | None] = ContextVar("paycore_idempotency_claim", default=None)


def bind(claim: Claim) -> Token[Claim | None]:
    """Writes of the current task are on ``claim``'s behalf from now on (until ``unbind``).
    Tasks it starts inherit the context but not the claim: it holds for this task only."""
    claim.task = asyncio.current_task()
    return _claim.set(claim)


def unbind(token: Token[Claim | None]) -> None:
    _claim.reset(token)


@contextlib.contextmanager
def bound(claim: Claim) -> Iterator[Claim]:
    """``bind`` for the duration of a block."""
    token = bind(claim)
    try:
        yield claim
    finally:
        unbind(token)


def pending() -> Claim | None:
    """The current task's claim while none of its effects has committed, else None."""
    claim = _claim.get()
    if claim is None or claim.committed or claim.task is not asyncio.current_task():
        return None
    return claim


async def mark(conn: AsyncConnection, claim: Claim, now: datetime) -> None:
    """Write the claim's effect row in ``conn``'s transaction; ``ClaimLost`` if another request
    did first (the caller's transaction must then roll back)."""
    try:
        await conn.execute(insert(effects).values(claim.row(now)))
    except IntegrityError:
        raise ClaimLost from None


async def lost(conn: AsyncConnection, claim: Claim) -> bool:
    """Whether another request's effect committed under the claim's key."""
    query = select(effects.c.owner).where(
        effects.c.scope == claim.scope, effects.c.key == claim.key
    )
    owner = (await conn.execute(query)).scalar_one_or_none()
    return owner is not None and owner != claim.owner
