"""Idempotency-Key claims held by a lease, taken over once it has run out, and fenced: whoever
holds the claim, the effect of a key commits once (``web.claims``, ``persistence.fencing``).
The clock is the test's; the database a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.persistence import fencing
from paycore.platform.persistence.batch import Batch
from paycore.platform.persistence.fencing import Claim, ClaimLost
from paycore.platform.persistence.uow import Database
from paycore.platform.web.claims import OUTCOME_UNKNOWN, REUSED, Claims, Keeper, Replay
from paycore.platform.web.claims import idempotency_keys as keys
from paycore.platform.web.problems import Problem

LEASE = timedelta(seconds=5)
SCOPE, FINGERPRINT = "caller", "request-hash"

_test_metadata = MetaData()
effects_done = Table(
    "test_effects_done",
    _test_metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("what", String(50), nullable=False),
)


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def db(engine: AsyncEngine) -> Database:
    async with engine.begin() as conn:
        await conn.run_sync(_test_metadata.create_all)
    return Database(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def claims(db: Database, clock: Clock) -> Claims:
    return Claims(db, lease=LEASE, clock=clock)


async def _claim(claims: Claims, key: str = "k") -> Claim:
    taken = await claims.take(SCOPE, key, FINGERPRINT)
    assert isinstance(taken, Claim), taken
    return taken


async def _taken_over(claims: Claims, clock: Clock, key: str = "k") -> tuple[Claim, Claim]:
    """A claim that stalled past its lease, and the retry's claim that took it over."""
    stalled = await _claim(claims, key)
    clock.advance(LEASE.total_seconds() + 0.1)
    return stalled, await _claim(claims, key)


def _problem(taken: object, code: str) -> Problem:
    assert isinstance(taken, Problem), taken
    assert taken.code == code
    return taken


async def _effect(db: Database, claim: Claim, what: str) -> None:
    """What a request's handler does under its claim: one write in a unit of work."""
    with fencing.bound(claim):
        async with db.transaction() as tx:
            await tx.execute(insert(effects_done).values(what=what))


async def _done(db: Database) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.execute(select(effects_done.c.what))).scalars())


# --- the lease ------------------------------------------------------------------------------


async def test_a_claim_is_held_for_its_lease_and_a_retry_is_told_when_to_come_back(
    claims: Claims, clock: Clock
) -> None:
    await _claim(claims)
    busy = _problem(await claims.take(SCOPE, "k", FINGERPRINT), "idempotency-key-in-progress")
    assert busy.headers == {"Retry-After": "5"}
    clock.advance(4.2)
    busy = _problem(await claims.take(SCOPE, "k", FINGERPRINT), "idempotency-key-in-progress")
    assert busy.headers == {"Retry-After": "1"}
    assert await claims.take(SCOPE, "k", "another-request") is REUSED


async def test_a_claim_whose_lease_ran_out_is_taken_over_and_the_old_owner_loses_it(
    claims: Claims, clock: Clock
) -> None:
    first, second = await _taken_over(claims, clock)
    assert second.owner != first.owner
    _problem(await claims.take(SCOPE, "k", FINGERPRINT), "idempotency-key-in-progress")
    assert not await claims.renew(first)
    assert await claims.renew(second)


async def test_a_renewed_lease_keeps_the_claim(claims: Claims, clock: Clock) -> None:
    held = await _claim(claims)
    for _ in range(3):
        clock.advance(4)
        assert await claims.renew(held)
    _problem(await claims.take(SCOPE, "k", FINGERPRINT), "idempotency-key-in-progress")


async def test_two_retries_racing_for_a_lapsed_claim_get_it_once(
    claims: Claims, clock: Clock
) -> None:
    await _claim(claims)
    clock.advance(6)
    taken = await asyncio.gather(*(claims.take(SCOPE, "k", FINGERPRINT) for _ in range(2)))
    assert sorted(type(t).__name__ for t in taken) == ["Claim", "Problem"]


async def test_a_claim_from_before_leases_is_held_60_seconds_from_its_creation(
    claims: Claims, db: Database, clock: Clock
) -> None:
    async with db.transaction() as tx:
        await tx.execute(
            insert(keys).values(
                scope=SCOPE,
                key="old",
                request_hash=FINGERPRINT,
                created_at=clock.now - timedelta(seconds=30),
            )
        )
    busy = _problem(await claims.take(SCOPE, "old", FINGERPRINT), "idempotency-key-in-progress")
    assert busy.headers == {"Retry-After": "30"}
    clock.advance(31)
    assert isinstance(await claims.take(SCOPE, "old", FINGERPRINT), Claim)


async def test_a_running_request_renews_its_lease(db: Database) -> None:
    claims = Claims(db, lease=timedelta(seconds=0.3))
    held = await _claim(claims)

    async def lease_until() -> datetime:
        async with db.connect() as conn:
            found = await conn.scalar(select(keys.c.lease_until).where(keys.c.key == "k"))
        assert found is not None
        return found

    first = await lease_until()
    keeper = Keeper(claims, held)
    try:
        async with asyncio.timeout(10):
            while await lease_until() == first:
                await asyncio.sleep(0.05)
    finally:
        keeper.stop()


# --- fencing: the effect commits once ---------------------------------------------------------


async def test_only_the_first_effect_under_a_key_commits_and_its_answer_is_the_keys(
    claims: Claims, db: Database, clock: Clock
) -> None:
    stalled, retry = await _taken_over(claims, clock)
    await _effect(db, stalled, "first")
    with pytest.raises(ClaimLost):
        await _effect(db, retry, "second")
    assert await _done(db) == ["first"]
    assert (stalled.committed, retry.committed) == (True, False)

    await claims.settle(retry, 409, [], b"lost")  # the loser stores nothing
    await claims.settle(stalled, 201, [(b"content-type", b"application/json")], b"{}")
    replay = await claims.take(SCOPE, "k", FINGERPRINT)
    assert replay == Replay(201, [(b"content-type", b"application/json")], b"{}")


async def test_an_effect_whose_answer_was_never_stored_is_an_outcome_unknown(
    claims: Claims, db: Database, clock: Clock
) -> None:
    crashed = await _claim(claims)
    await _effect(db, crashed, "done")  # then the process died: no settle
    assert await claims.take(SCOPE, "k", FINGERPRINT) is OUTCOME_UNKNOWN
    clock.advance(60)
    assert await claims.take(SCOPE, "k", FINGERPRINT) is OUTCOME_UNKNOWN
    assert await _done(db) == ["done"]


async def test_a_5xx_lets_the_key_go_unless_its_effect_committed(
    claims: Claims, db: Database
) -> None:
    failed = await _claim(claims, "a")
    await claims.settle(failed, 503, [], b"")
    assert isinstance(await claims.take(SCOPE, "a", FINGERPRINT), Claim)

    committed = await _claim(claims, "b")
    await _effect(db, committed, "b")
    await claims.settle(committed, 500, [], b"")
    assert await claims.take(SCOPE, "b", FINGERPRINT) is OUTCOME_UNKNOWN


async def test_an_answer_marked_no_store_is_not_kept_and_the_key_says_so(
    claims: Claims, db: Database
) -> None:
    """An answer showing data once (a new card's number and CVV) is never stored; a retry is
    told the effect happened, and the effect stays single."""
    claim = await _claim(claims)
    await _effect(db, claim, "card")
    shown_once = [(b"content-type", b"application/json"), (b"Cache-Control", b"No-Store")]
    await claims.settle(claim, 201, shown_once, b'{"number": "6504850000000001"}')
    replay = await claims.take(SCOPE, "k", FINGERPRINT)
    assert isinstance(replay, Replay)
    assert replay.status == 409
    assert replay.headers == [(b"content-type", b"application/problem+json")]
    assert b"idempotency-answer-not-kept" in replay.body
    assert b"6504850000000001" not in replay.body
    async with db.connect() as conn:
        stored = (await conn.execute(select(keys.c.body))).scalars().all()
    assert all(b"6504850000000001" not in (body or b"") for body in stored)
    assert await _done(db) == ["card"]


async def test_a_request_answered_after_losing_its_claim_stores_nothing(
    claims: Claims, clock: Clock
) -> None:
    stalled, retry = await _taken_over(claims, clock)
    await claims.settle(stalled, 422, [], b"stale answer")
    await claims.settle(retry, 422, [], b"answer")
    assert await claims.take(SCOPE, "k", FINGERPRINT) == Replay(422, [], b"answer")


async def test_later_writes_of_a_request_whose_effect_committed_pass(
    claims: Claims, db: Database
) -> None:
    claim = await _claim(claims)
    with fencing.bound(claim):
        for what in ("one", "two"):
            async with db.transaction() as tx:
                await tx.execute(insert(effects_done).values(what=what))
    assert await _done(db) == ["one", "two"]


async def test_a_task_started_by_a_request_writes_on_nobodys_behalf(
    claims: Claims, db: Database
) -> None:
    claim = await _claim(claims)
    with fencing.bound(claim):
        assert fencing.pending() is claim
        assert await asyncio.create_task(_pending()) is None
    assert fencing.pending() is None


async def _pending() -> Claim | None:
    return fencing.pending()


async def test_the_batch_writer_fails_only_the_item_whose_key_took_effect_elsewhere(
    claims: Claims, db: Database, clock: Clock, engine: AsyncEngine
) -> None:
    built: list[int] = []

    def build(items: Sequence[str], _ids: Sequence[int], batch: Batch) -> list[str]:
        built.append(len(items))
        batch.add(effects_done, [{"what": item} for item in items])
        return list(items)

    writer = db.writer(build, tables=((effects_done, ("what",)),))
    free_a, free_b = await _claim(claims, "a"), await _claim(claims, "b")
    stalled, retry = await _taken_over(claims, clock, "c")
    await _effect(db, stalled, "c by the stalled request")

    async def submit(claim: Claim, item: str) -> Any:
        with fencing.bound(claim):
            return await writer.submit(item)

    try:
        results = await asyncio.gather(
            submit(free_a, "a"),
            submit(retry, "c again"),
            submit(free_b, "b"),
            return_exceptions=True,
        )
    finally:
        await writer.stop()
    assert (results[0], results[2]) == ("a", "b")
    assert isinstance(results[1], ClaimLost)
    assert built == [3, 1, 1, 1]  # tried as one group, then item by item
    assert sorted(await _done(db)) == ["a", "b", "c by the stalled request"]
    assert (free_a.committed, retry.committed, free_b.committed) == (True, False, True)
    async with engine.connect() as conn:
        marked = await conn.scalar(select(func.count()).select_from(fencing.effects))
    assert marked == 3
