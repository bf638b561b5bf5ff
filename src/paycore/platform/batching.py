"""Group commit: concurrent writers hand their item to one loop that writes everything waiting
in a single transaction, so the fixed cost of a transaction (and its fsync) is shared.

Nothing waits on purpose: while one batch commits, the next one gathers. A batch that fails is
retried item by item, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
R = TypeVar("R")

WriteMany = Callable[[AsyncConnection, Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        engine: AsyncEngine,
        write: WriteMany[T, R],
        *,
        max_batch: int = 200,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._write = write
        self._max = max_batch
        self._after_commit = after_commit
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
        """Finish what was submitted, then stop the loop."""
        if self._task is None or self._task.done():
            return
        await self._queue.put(None)
        await self._task

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
            async with self._engine.begin() as conn:
                results = await self._write(conn, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for one in batch:
                await self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)
        if self._after_commit:
            self._after_commit()


def _settle(
    future: asyncio.Future[R], *, result: R | None = None, exc: Exception | None = None
) -> None:
    if future.done():  # the caller went away (cancelled request)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
