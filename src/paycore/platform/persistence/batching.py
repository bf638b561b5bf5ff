"""Group commit: concurrent writers hand their item to one loop that writes everything waiting
in a single commit, so the fixed cost of a transaction (and its fsync) is shared.

Nothing waits on purpose: while one batch commits, the next one gathers. A batch the database
refuses (a constraint, a value) is retried item by item, so one bad item fails alone; any other
failure (a lost connection: the commit may or may not have happened) fails the whole batch
rather than risk writing it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from sqlalchemy.exc import DataError, IntegrityError

T = TypeVar("T")
R = TypeVar("R")
T_contra = TypeVar("T_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

REFUSED = (IntegrityError, DataError, ValueError)
"""Failures one item can cause; nothing was written."""


class BatchWriter(Protocol[T_contra, R_co]):
    """Writes and commits a batch; returns one result per item, in order."""

    async def __call__(self, items: Sequence[T_contra], /) -> Sequence[R_co]: ...

    async def close(self) -> None: ...


class GroupCommit(Generic[T, R]):
    def __init__(self, write: BatchWriter[T, R], *, max_batch: int = 200) -> None:
        self._writer = write
        self._max = max_batch
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Write ``item`` with whatever else is waiting; returns once it is committed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="group-commit")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def stop(self) -> None:
        """Finish what was submitted, then stop the loop and close the writer."""
        if self._task is not None and not self._task.done():
            await self._queue.put(None)
            await self._task
        await self._writer.close()

    async def _run(self) -> None:
        while (first := await self._queue.get()) is not None:
            batch, stopping = [first], False
            while len(batch) < self._max and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._commit(batch)
            if stopping:
                return

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._writer([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or not isinstance(exc, REFUSED):
                for _, future in batch:
                    _settle(future, exc=exc)
                return
            for one in batch:
                await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


def _settle(
    future: asyncio.Future[R], *, result: R | None = None, exc: Exception | None = None
) -> None:
    if future.done():  # the caller went away (cancelled request)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
