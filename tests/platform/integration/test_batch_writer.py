"""The batch writer behind the unit of work, on both engines: group commit into several tables
and the outbox, ids drawn ahead, events and hooks after the commit only, a refused item
failing alone, values processed as through SQLAlchemy; writes made under an Idempotency-Key
claim commit once per key (``fencing``), in a unit of work and in a batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Envelope
from paycore.platform.persistence import fencing
from paycore.platform.persistence.batch import Batch, GroupWriter
from paycore.platform.persistence.db import BIG_ID, UtcDateTime
from paycore.platform.persistence.fencing import Claim, ClaimLost
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database

_tables = MetaData()
widgets = Table(
    "test_widgets",
    _tables,
    Column("id", BIG_ID, primary_key=True, autoincrement=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("made_at", UtcDateTime(), nullable=False),
)
parts = Table(
    "test_widget_parts",
    _tables,
    Column("widget_id", BIG_ID, primary_key=True),
    Column("part", String(50), primary_key=True),
)


@pytest.fixture
async def engine(each_engine: AsyncEngine) -> AsyncEngine:
    async with each_engine.begin() as conn:
        await conn.run_sync(_tables.create_all)
    return each_engine


class Widgets:
    """Writes widgets (a name, maybe when it was made) with two parts and an event each."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.handed: list[list[Envelope]] = []
        self.hooks: list[list[int]] = []
        self.db = Database(engine, lambda events: self.handed.append(list(events)))
        self.writer: GroupWriter[tuple[str, datetime | None], int] = self.db.writer(
            self.build,
            tables=((widgets, ("id", "name", "made_at")), (parts, ("widget_id", "part"))),
            ids_from=widgets.c.id,
        )

    def build(
        self, items: Sequence[tuple[str, datetime | None]], ids: Sequence[int], batch: Batch
    ) -> list[int]:
        batch.add(
            widgets,
            [
                {"id": i, "name": n, "made_at": at or batch.now}
                for (n, at), i in zip(items, ids, strict=True)
            ],
        )
        batch.add(parts, [{"widget_id": i, "part": p} for i in ids for p in ("left", "right")])
        for (name, _), i in zip(items, ids, strict=True):
            batch.publish("widgets", name.encode(), key=str(i), correlation_id=f"cid-{name}")
        batch.after_commit(lambda: self.hooks.append(list(ids)))
        return list(ids)

    async def submit_all(self, *names: str) -> list[Any]:
        return await asyncio.gather(
            *(self.writer.submit((n, None)) for n in names), return_exceptions=True
        )

    async def counts(self) -> list[int]:
        """Rows in the widgets, their parts, and the outbox."""
        async with self.db.connect() as conn:
            return [
                (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                for t in (widgets, parts, outbox)
            ]


@pytest.fixture
async def shop(engine: AsyncEngine) -> AsyncIterator[Widgets]:
    made = Widgets(engine)
    yield made
    await made.writer.stop()


async def test_a_batch_writes_every_table_then_hands_its_events_and_runs_its_hooks(
    shop: Widgets,
) -> None:
    first = await shop.submit_all("a", "b", "c")  # submitted together: one batch
    assert sorted(first) == [1, 2, 3]
    assert await shop.submit_all("d") == [4]  # ids follow what the table holds
    assert await shop.counts() == [4, 8, 4]
    assert [[e.body for e in events] for events in shop.handed] == [[b"a", b"b", b"c"], [b"d"]]
    assert shop.hooks == [[1, 2, 3], [4]]
    [event] = shop.handed[1]
    assert (event.topic, event.key, event.headers["correlation-id"]) == ("widgets", "4", "cid-d")
    async with shop.db.connect() as conn:
        stored = (await conn.execute(select(outbox.c.id, outbox.c.headers))).all()
    assert {row.id for row in stored} == {e.id for events in shop.handed for e in events}


async def test_a_refused_item_fails_alone_and_leaves_nothing_behind(shop: Widgets) -> None:
    await shop.submit_all("a")
    outcomes = await shop.submit_all("b", "a", "c")  # "a" again: its name is taken
    assert isinstance(outcomes[1], IntegrityError)
    written = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(set(written)) == 2  # (ids, like a sequence's, may have gaps on PostgreSQL)
    assert await shop.counts() == [3, 6, 3]
    assert sorted(e.body for events in shop.handed for e in events) == [b"a", b"b", b"c"]
    assert sorted(i for ids in shop.hooks for i in ids) == [1, *sorted(written)]  # none refused


async def test_values_go_through_the_column_types(shop: Widgets) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        await shop.writer.submit(("naive", datetime(2026, 1, 1)))
    assert await shop.counts() == [0, 0, 0]
    assert shop.handed == []
    at = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    await shop.writer.submit(("aware", at))
    async with shop.db.connect() as conn:  # read back through SQLAlchemy: the same value
        stored = (await conn.execute(select(widgets.c.made_at))).scalar_one()
    assert stored == at


async def test_rows_for_a_table_the_writer_was_not_given_are_refused(engine: AsyncEngine) -> None:
    def build(items: Sequence[str], ids: Sequence[int], batch: Batch) -> list[str]:
        batch.add(parts, [{"widget_id": 1, "part": p} for p in items])
        return list(items)

    writer = Database(engine).writer(build, tables=((widgets, ("id", "name", "made_at")),))
    with pytest.raises(ValueError, match="not given these tables: test_widget_parts"):
        await writer.submit("x")
    await writer.stop()


async def test_a_write_without_ids_or_events_needs_neither(engine: AsyncEngine) -> None:
    def build(items: Sequence[str], ids: Sequence[int], batch: Batch) -> list[int]:
        assert ids == ()
        batch.add(
            widgets, [{"id": 10 + n, "name": x, "made_at": utcnow()} for n, x in enumerate(items)]
        )
        return [10 + n for n in range(len(items))]

    writer = Database(engine).writer(build, tables=((widgets, ("id", "name", "made_at")),))
    assert await writer.submit("only") == 10
    await writer.stop()


async def _on_behalf_of(claim: Claim, write: Any) -> Any:
    with fencing.bound(claim):
        return await write()


async def test_an_item_whose_key_took_effect_elsewhere_fails_alone(shop: Widgets) -> None:
    async with shop.db.transaction() as tx:  # another request's effect under "taken"
        await fencing.mark(tx.conn, Claim("caller", "taken", "first"), utcnow())
    claims = [
        Claim("caller", "a", "o-a"),
        Claim("caller", "taken", "o-b"),
        Claim("caller", "c", "o-c"),
    ]
    outcomes = await asyncio.gather(
        *(
            _on_behalf_of(claim, lambda name=name: shop.writer.submit((name, None)))
            for claim, name in zip(claims, "abc", strict=True)
        ),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], ClaimLost)
    assert await shop.counts() == [2, 4, 2]
    assert sorted(e.body for events in shop.handed for e in events) == [b"a", b"c"]
    async with shop.db.connect() as conn:
        marked = (await conn.execute(select(fencing.effects.c.key, fencing.effects.c.owner))).all()
    assert sorted(map(tuple, marked)) == [("a", "o-a"), ("c", "o-c"), ("taken", "first")]


async def test_two_units_of_work_under_one_key_commit_once(engine: AsyncEngine) -> None:
    db = Database(engine)

    async def make(name: str) -> None:
        async with db.transaction() as tx:
            await tx.execute(insert(widgets).values(name=name, made_at=utcnow()))

    outcomes = await asyncio.gather(
        *(
            _on_behalf_of(Claim("caller", "k", owner), lambda owner=owner: make(owner))
            for owner in ("one", "two")
        ),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ClaimLost", "NoneType"]
    async with db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(widgets))).scalar_one() == 1
