"""Group commit: concurrent submissions share one write; a refused item fails alone; a write
that may or may not have happened is never repeated."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy.exc import IntegrityError

from paycore.platform.persistence.batch import GroupCommit


class Writer:
    """Records each batch; refuses items named "bad"; ``broken`` loses the connection."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.broken = False
        self.closed = False

    async def __call__(self, items: Sequence[str]) -> list[str]:
        await asyncio.sleep(0.01)  # a commit takes a while: meanwhile the next batch gathers
        self.batches.append(list(items))
        if self.broken:
            raise ConnectionError("connection lost during commit")
        if "bad" in items:
            raise IntegrityError("INSERT", None, Exception("duplicate key"))
        return [item.upper() for item in items]

    async def close(self) -> None:
        self.closed = True


async def test_concurrent_items_share_batches_and_get_their_own_results() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    results = await asyncio.gather(*(group.submit(f"i{n}") for n in range(10)))
    assert results == [f"I{n}" for n in range(10)]
    assert len(writer.batches) < 10
    assert sorted(x for batch in writer.batches for x in batch) == sorted(
        f"i{n}" for n in range(10)
    )
    await group.stop()


async def test_a_refused_item_fails_alone() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    first = asyncio.create_task(group.submit("first"))  # committing while the others gather
    await asyncio.sleep(0)
    results = await asyncio.gather(
        group.submit("a"), group.submit("bad"), group.submit("b"), return_exceptions=True
    )
    assert await first == "FIRST"
    assert results[0] == "A"
    assert isinstance(results[1], IntegrityError)
    assert results[2] == "B"
    assert writer.batches[1:] == [["a", "bad", "b"], ["a"], ["bad"], ["b"]]
    await group.stop()


async def test_a_lost_connection_fails_the_batch_without_writing_it_again() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    writer.broken = True
    results = await asyncio.gather(
        *(group.submit(x) for x in ("a", "b", "c")), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert [x for batch in writer.batches for x in batch] == ["a", "b", "c"]  # each tried once
    writer.broken = False
    assert await group.submit("d") == "D"
    await group.stop()


async def test_stop_finishes_what_was_submitted_then_closes_the_writer() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    pending = [asyncio.create_task(group.submit(x)) for x in ("a", "b")]
    await asyncio.sleep(0)
    await group.stop()
    assert [await p for p in pending] == ["A", "B"]
    assert writer.closed


async def test_a_caller_that_goes_away_does_not_hold_back_the_others() -> None:
    writer = Writer()
    group = GroupCommit(writer)
    gone = asyncio.create_task(group.submit("gone"))
    stays = asyncio.create_task(group.submit("stays"))
    await asyncio.sleep(0)
    gone.cancel()
    assert await stays == "STAYS"
    with pytest.raises(asyncio.CancelledError):
        await gone
    await group.stop()


@pytest.mark.parametrize(("linger", "batches"), [(0.0, 4), (0.1, 1)])
async def test_with_a_linger_items_arriving_meanwhile_share_one_write(
    linger: float, batches: int
) -> None:
    """Four items 20 ms apart: each written alone without a linger (the commit takes 10 ms),
    all in one write with a 100 ms one."""
    writer = Writer()
    group = GroupCommit(writer, linger=linger)

    async def later(n: int) -> str:
        await asyncio.sleep(0.02 * n)
        return await group.submit(f"i{n}")

    assert await asyncio.gather(*(later(n) for n in range(4))) == ["I0", "I1", "I2", "I3"]
    assert len(writer.batches) == batches
    await group.stop()
