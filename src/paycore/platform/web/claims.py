"""The claims behind ``Idempotency-Key`` (``idempotency``): one row per caller and key in
``idempotency_keys``, held by one request at a time for a short lease that the running request
renews (``Keeper``, every third of it). A retry that finds the lease run out — its request
stalled, or its process died — takes the claim over at once instead of waiting; two retries
racing for it are told apart by a compare-and-set on the owner. When a request ends, its answer
is stored for replay (``settle``).

Taking a claim over never lets an effect happen twice: every write made for a request commits
the key's effect row with it (``persistence.fencing``), which only one request can. So:

- a request whose effect committed stores its answer, even if its claim was taken over
  meanwhile (the other request's effect then failed: it answered 409 and stores nothing);
- a request whose effect did not commit stores its answer only while the claim is still its own
  and no other request's effect committed;
- a key whose effect committed but whose answer was never stored (the process died between the
  two) is answered ``idempotency-key-outcome-unknown``: the client must look the resource up;
- an answer marked ``Cache-Control: no-store`` (data shown only once: a new card's number and
  CVV) is never stored: the key answers ``idempotency-answer-not-kept`` in its place.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from paycore.platform.clock import utcnow
from paycore.platform.persistence import fencing
from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.fencing import Claim
from paycore.platform.persistence.uow import Database
from paycore.platform.web.problems import Problem, problem_response

log = logging.getLogger(__name__)

LEGACY_LEASE = timedelta(seconds=60)
"""How long a claim written before leases (no ``lease_until``) is held from its creation."""
_KEPT_HEADERS = {b"content-type", b"location", b"retry-after"}

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),  # NULL while no answer is stored
    Column("headers", Text),
    Column("body", LargeBinary),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("owner", String(32)),  # the token of the request holding the claim
    Column("lease_until", UtcDateTime()),  # when a retry may take the claim over
    PrimaryKeyConstraint("scope", "key"),
)


@dataclass(frozen=True, slots=True)
class Replay:
    """A stored answer: status, the headers kept, the body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


REUSED = Problem(
    422,
    "idempotency-key-reused",
    "This Idempotency-Key was already used with a different request.",
)
OUTCOME_UNKNOWN = Problem(
    409,
    "idempotency-key-outcome-unknown",
    "A request with this Idempotency-Key took effect, but its answer was lost (the server "
    "stopped before storing it). Do not retry it: look the resource up.",
)


ANSWER_NOT_KEPT = Problem(
    409,
    "idempotency-answer-not-kept",
    "A request with this Idempotency-Key took effect; its answer showed data only once and was "
    "not kept. Do not retry it: look the resource up.",
)
"""What a key answers in place of an answer marked ``Cache-Control: no-store``."""


def in_progress(remaining: timedelta) -> Problem:
    """The 409 for a claim another request holds, with when to try again."""
    seconds = max(1, math.ceil(remaining.total_seconds()))
    return Problem(
        409,
        "idempotency-key-in-progress",
        "A request with this Idempotency-Key is still being processed.",
        headers={"Retry-After": str(seconds)},
    )


class Claims:
    """Takes, renews and settles claims (see the module doc)."""

    def __init__(
        self, db: Database, *, lease: timedelta, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.lease = lease
        self._clock = clock

    async def take(self, scope: str, key: str, fingerprint: str) -> Claim | Replay | Problem:
        """The claim, if it is this request's to run; else the stored answer to replay, or
        the problem to answer."""
        for _ in range(2):  # a claim deleted (a 5xx) between our insert and our read: again
            claim, now = Claim(scope, key, secrets.token_hex(16)), self._clock()
            try:
                async with self.db.transaction() as tx:
                    await tx.execute(
                        insert(idempotency_keys).values(
                            scope=scope,
                            key=key,
                            request_hash=fingerprint,
                            owner=claim.owner,
                            lease_until=now + self.lease,
                            created_at=now,
                        )
                    )
                return claim
            except IntegrityError:
                pass
            effect = exists().where(fencing.effects.c.scope == scope, fencing.effects.c.key == key)
            query = select(idempotency_keys, effect.label("effect")).where(
                idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
            )
            async with self.db.connect() as conn:
                row = (await conn.execute(query)).one_or_none()
            if row is not None:
                return await self._held(row, claim, fingerprint, now)
        return in_progress(timedelta(0))

    async def _held(
        self, row: AnyRow, claim: Claim, fingerprint: str, now: datetime
    ) -> Claim | Replay | Problem:
        """What to do about a key that has a row already."""
        if row.request_hash != fingerprint:
            return REUSED
        if row.status is not None:
            stored = orjson.loads(row.headers or "[]")
            headers = [(k.encode(), v.encode("latin-1")) for k, v in stored]
            return Replay(row.status, headers, row.body or b"")
        if row.effect:
            return OUTCOME_UNKNOWN
        expires = row.lease_until or row.created_at + LEGACY_LEASE
        if now < expires:
            return in_progress(expires - now)
        taken = await self._hold(claim, held_by=row.owner, until=now + self.lease)
        return claim if taken else in_progress(self.lease)

    async def renew(self, claim: Claim) -> bool:
        """Extend the claim's lease; False if it is no longer the claim's (taken over)."""
        return await self._hold(claim, held_by=claim.owner, until=self._clock() + self.lease)

    async def _hold(self, claim: Claim, *, held_by: str | None, until: datetime) -> bool:
        """Give the key to ``claim`` until ``until`` if ``held_by`` still holds it and no answer
        is stored (a compare-and-set: of two retries taking a lapsed claim over, one wins)."""
        async with self.db.transaction() as tx:
            held = await tx.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.scope == claim.scope,
                    idempotency_keys.c.key == claim.key,
                    idempotency_keys.c.owner == held_by,
                    idempotency_keys.c.status.is_(None),
                )
                .values(owner=claim.owner, lease_until=until)
            )
        return held.rowcount == 1

    async def settle(
        self, claim: Claim, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> None:
        """Store the request's answer for replay, or let the key go (a 5xx, or a refusal of
        the caller before anything ran: 401, 403, 429; not answers worth replaying, the client
        may retry), as the module doc says."""
        forgotten = status >= 500 or status in _REFUSED_CALLER
        if claim.committed and forgotten:
            return  # the effect exists, the answer does not: a retry is told so
        where = [
            idempotency_keys.c.scope == claim.scope,
            idempotency_keys.c.key == claim.key,
            idempotency_keys.c.status.is_(None),
        ]
        if not claim.committed:
            other_effect = exists().where(
                fencing.effects.c.scope == claim.scope, fencing.effects.c.key == claim.key
            )
            where += [idempotency_keys.c.owner == claim.owner, ~other_effect]
        if not forgotten and _shown_once(headers):
            in_place = problem_response(ANSWER_NOT_KEPT)
            status, headers, body = in_place.status_code, in_place.raw_headers, bytes(in_place.body)
        async with self.db.transaction() as tx:
            if forgotten:
                await tx.execute(delete(idempotency_keys).where(*where))
                return
            kept = [
                [k.decode(), v.decode("latin-1")] for k, v in headers if k.lower() in _KEPT_HEADERS
            ]
            await tx.execute(
                update(idempotency_keys)
                .where(*where)
                .values(
                    status=status,
                    headers=orjson.dumps(kept).decode(),
                    body=body,
                    owner=claim.owner,
                )
            )


def _shown_once(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether an answer says it may not be stored (``Cache-Control: no-store``)."""
    return any(k.lower() == b"cache-control" and b"no-store" in v.lower() for k, v in headers)


_REFUSED_CALLER = frozenset((401, 403, 429))
"""Answers to the caller (its credential, its rate) before the request ran: not kept, so a
caller who fixes them is not replayed the refusal."""


class Keeper:
    """Renews a running request's lease every third of it, until ``stop``: a live request
    keeps its key however long it runs; a dead one stops renewing and its lease runs out."""

    def __init__(self, claims: Claims, claim: Claim) -> None:
        self._claims, self._claim = claims, claim
        self._every = claims.lease.total_seconds() / 3
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(self._every, self._due)
        self._task: asyncio.Task[None] | None = None

    def _due(self) -> None:
        self._task = self._loop.create_task(self._renew(), name="idempotency-lease")

    async def _renew(self) -> None:
        try:
            held = await self._claims.renew(self._claim)
        except Exception:  # the database is away: try again at the next turn
            log.warning("could not renew an idempotency lease", exc_info=True)
            held = True
        if held:
            self._timer = self._loop.call_later(self._every, self._due)

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
