"""``GroupRead``: lookups asked for while a query runs go together in the next one (each key
once), each caller gets what was found for its own key (None: nothing), a failed query fails
only the lookups it carried, a caller that goes away leaves the others their answers, and the
reader stops when nobody waits and starts again with the next lookup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import pytest

from paycore.platform.persistence.reads import GroupRead


class Squares:
    """Finds the square of every key but the negative ones; each query waits for ``go``."""

    def __init__(self) -> None:
        self.queries: list[list[int]] = []
        self.go = asyncio.Event()
        self.go.set()
        self.fail_next = False

    async def many(self, keys: Sequence[int]) -> dict[int, int]:
        self.queries.append(list(keys))
        await self.go.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database is away")
        return {k: k * k for k in keys if k >= 0}


async def test_lookups_made_while_a_query_runs_go_together_in_the_next() -> None:
    squares = Squares()
    squares.go.clear()
    lookups = GroupRead(squares.many)
    first = asyncio.create_task(lookups.one(2))
    await asyncio.sleep(0)  # the first query is running, held
    rest = [asyncio.create_task(lookups.one(k)) for k in (3, -1, 3, 4)]
    await asyncio.sleep(0)
    squares.go.set()

    assert await first == 4
    assert await asyncio.gather(*rest) == [9, None, 9, 16]
    assert squares.queries == [[2], [3, -1, 4]]


async def test_a_batch_holds_at_most_max_batch_keys() -> None:
    squares = Squares()
    lookups = GroupRead(squares.many, max_batch=2)

    assert await asyncio.gather(*(lookups.one(k) for k in range(5))) == [0, 1, 4, 9, 16]
    assert squares.queries == [[0, 1], [2, 3], [4]]


async def test_a_failed_query_fails_only_its_own_lookups() -> None:
    squares = Squares()
    squares.go.clear()
    squares.fail_next = True
    lookups = GroupRead(squares.many)
    failing = asyncio.create_task(lookups.one(1))
    await asyncio.sleep(0)
    later = asyncio.create_task(lookups.one(5))
    await asyncio.sleep(0)
    squares.go.set()

    with pytest.raises(ConnectionError):
        await failing
    assert await later == 25
    assert await lookups.one(1) == 1  # and the reader goes on


async def test_a_caller_that_goes_away_leaves_the_others_their_answers() -> None:
    squares = Squares()
    squares.go.clear()
    lookups = GroupRead(squares.many)
    leaving = asyncio.create_task(lookups.one(6))
    staying = asyncio.create_task(lookups.one(7))
    await asyncio.sleep(0)
    leaving.cancel()
    squares.go.set()

    assert await staying == 49
    with contextlib.suppress(asyncio.CancelledError):
        await leaving
    assert leaving.cancelled()


async def test_the_reader_stops_when_nobody_waits() -> None:
    squares = Squares()
    lookups = GroupRead(squares.many)
    assert await lookups.one(2) == 4
    await asyncio.sleep(0)
    assert lookups._reader is None
    assert await lookups.one(3) == 9
    assert squares.queries == [[2], [3]]


async def test_a_reader_cancelled_leaves_no_caller_waiting_forever() -> None:
    squares = Squares()
    squares.go.clear()
    lookups = GroupRead(squares.many)
    for ran in (False, True):  # cancelled before it ever ran, then in the middle of a query
        asked = [asyncio.create_task(lookups.one(k)) for k in (1, 2)]
        await asyncio.sleep(0)
        if ran:
            await asyncio.sleep(0)
            assert squares.queries[-1] == [1, 2]
        assert lookups._reader is not None
        lookups._reader.cancel()  # as the event loop does when it shuts down

        for task in asked:
            with pytest.raises(asyncio.CancelledError):
                await task
    squares.go.set()
    assert await lookups.one(3) == 9  # a new reader answers the next lookup
