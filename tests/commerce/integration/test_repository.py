"""The commerce repository and use cases on both engines, schema built by the real migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from paycore.commerce import domain, messages
from paycore.commerce.analytics import service as analytics_service
from paycore.commerce.analytics import store as analytics_store
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import MemoryBoard
from paycore.commerce.domain import Order, OrderLine, UnknownProducts
from paycore.commerce.orders import service as order_service
from paycore.commerce.orders import store as order_store
from paycore.platform.ids import uuid7
from paycore.platform.messaging import deadletters
from paycore.platform.messaging.bus import Delivery, Envelope, Subscription
from paycore.platform.messaging.consumer import Consumer, Rejected, one_by_one
from paycore.platform.messaging.outbox import outbox
from paycore.platform.persistence.db import create_engine


@pytest.fixture
def engine(each_engine: AsyncEngine) -> AsyncEngine:
    return each_engine


async def test_an_order_and_its_event_commit_together(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await order_service.create_customer(conn, email="Ana@Example.com", username="ana")
        await order_service.create_product(conn, name="lápis", value_cents=110)
        await order_service.create_product(conn, name="caderno", value_cents=100)
    async with engine.begin() as conn:
        order = await order_service.create_order(
            conn, email="ana@example.com", items=[("lápis", 60), ("caderno", 10), ("lápis", 40)]
        )
    assert order.total_cents == 12_000
    async with engine.connect() as conn:
        stored = await order_store.load_order(conn, order.order_id)
        events = (await conn.execute(select(outbox))).all()
    assert stored is not None
    assert stored.total_cents == 12_000
    assert [e.topic for e in events] == [messages.ORDER_CREATED]
    assert messages.decode_order_created(events[0].body).total_cents == 12_000

    with pytest.raises(UnknownProducts):
        async with engine.begin() as conn:
            await order_service.create_order(conn, email="ana@example.com", items=[("borracha", 1)])
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 1


async def test_concurrent_duplicate_customers_leave_one_and_a_conflict(engine: AsyncEngine) -> None:
    async def create() -> str:
        try:
            async with engine.begin() as conn:
                await order_service.create_customer(conn, email="bia@example.com", username="bia")
            return "created"
        except domain.Conflict:
            return "conflict"

    results = await asyncio.gather(*(create() for _ in range(5)))
    assert sorted(results) == ["conflict"] * 4 + ["created"]


async def test_analytics_read_model_answers_the_three_questions(engine: AsyncEngine) -> None:
    board = MemoryBoard()
    at = datetime(2026, 11, 2, tzinfo=UTC)
    for n in range(1, 6):
        order = Order(1000 + n, 7 if n <= 3 else 8, (OrderLine("caneta", n, 250),), at)
        async with engine.begin() as conn:
            await analytics_service.record_order(
                conn, order, board=board, source="btg", topic="t", message_id=f"m{n}", body=b"{}"
            )
    async with engine.connect() as conn:
        assert await analytics_service.order_total(conn, 1002) == 500
        assert await analytics_service.order_count(conn, 7) == 3
        page = await analytics_service.orders_of_customer(conn, 7, page=1, page_size=2)
    assert page.total_elements == 3
    assert page.total_pages == 2
    assert page.total_on_orders_cents == (1 + 2 + 3) * 250
    assert [r.order_id for r in page.rows] == [1003]


async def test_dead_letters_and_their_replays_fit_both_engines(engine: AsyncEngine) -> None:
    async def reject(conn: AsyncConnection, delivery: Delivery) -> None:
        raise Rejected("never valid")

    consumer = Consumer(
        subscription=Subscription("some.topic", "g"),
        handler=one_by_one(reject),
        engine=engine,
        bus=None,  # type: ignore[arg-type]  # handle_batch needs no broker
    )
    await consumer.handle_batch([Delivery("some.topic", b"junk", uuid7(), None, {})])
    [letter] = await deadletters.list_letters(engine)
    assert letter.error == "never valid"
    assert await deadletters.replay(engine, [letter.id]) == 1
    async with engine.connect() as conn:
        ids = sorted((await conn.execute(select(outbox.c.id))).scalars())
    assert ids == sorted([f"dlq-{letter.id}", f"replay-{letter.id}"])


async def test_the_order_writer_commits_a_batch_and_hands_over_its_events(
    engine: AsyncEngine,
) -> None:
    """The API's writer: one statement on PostgreSQL, a transaction on SQLite; same result."""
    async with engine.begin() as conn:
        ana = await order_service.create_customer(conn, email="ana@example.com", username="ana")
        bia = await order_service.create_customer(conn, email="bia@example.com", username="bia")
    handed: list[Envelope] = []
    commit = order_service.order_writer(engine, handed.extend)
    lines = (OrderLine("caderno", 2, 1_050), OrderLine("lápis", 3, 110))
    pending = [
        order_service.PendingOrder(ana["id"], lines, "cid-1"),
        order_service.PendingOrder(bia["id"], lines[:1], "cid-2"),
    ]
    first = await commit(pending)
    second = await commit(pending[:1])
    placed = [*first, *second]
    assert len({o.order_id for o in placed}) == 3
    assert [o.total_cents for o in placed] == [2_430, 2_100, 2_430]
    async with engine.connect() as conn:
        for order in placed:
            assert await order_store.load_order(conn, order.order_id) == order
        waiting = (await conn.execute(select(outbox).order_by(outbox.c.seq))).all()
    assert [e.id for e in handed] == [row.id for row in waiting]
    assert [messages.decode_order_created(e.body).order_id for e in handed] == [
        o.order_id for o in placed
    ]
    assert [e.key for e in handed] == [str(ana["id"]), str(bia["id"]), str(ana["id"])]
    assert [e.headers["correlation-id"] for e in handed] == ["cid-1", "cid-2", "cid-1"]


async def test_a_batch_the_database_refuses_writes_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        ana = await order_service.create_customer(conn, email="ana@example.com", username="ana")
    handed: list[Envelope] = []
    commit = order_service.order_writer(engine, handed.extend)
    lines = (OrderLine("caderno", 1, 100),)
    with pytest.raises(IntegrityError):  # the second customer does not exist
        await commit(
            [
                order_service.PendingOrder(ana["id"], lines, ""),
                order_service.PendingOrder(999, lines, ""),
            ]
        )
    assert handed == []
    async with engine.connect() as conn:
        for table in (order_store.orders, order_store.order_items, outbox):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0


async def test_writers_of_the_archived_tables_commit_their_seq_in_order(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """The archive's marker is the last ``seq`` archived: a second writer waits for the first
    to commit (PostgreSQL: an advisory lock; SQLite: its one write lock), so no lower ``seq``
    can commit after a flush has stepped past it."""
    at = datetime(2026, 3, 1, tzinfo=UTC)
    first_open, first_may_commit = asyncio.Event(), asyncio.Event()
    url = engine.url.render_as_string(hide_password=False)
    other, archiver = create_engine(url), create_engine(url)  # other processes

    async def first() -> None:
        async with engine.begin() as conn:
            await analytics_store.record_messages(conn, [("m-1", b"{}")], topic="t", at=at)
            first_open.set()
            await first_may_commit.wait()

    async def second() -> None:
        await first_open.wait()
        async with other.begin() as conn:
            await analytics_store.record_messages(conn, [("m-2", b"{}")], topic="t", at=at)

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_open.wait()
    await asyncio.sleep(0.3)
    assert not tasks[1].done()  # waiting for its turn
    archive = Archive(tmp_path / "archive")
    await analytics_service.flush_archive(archiver, archive)  # the uncommitted row is not seen yet
    first_may_commit.set()
    await asyncio.gather(*tasks)
    await analytics_service.flush_archive(archiver, archive)
    for eng in (other, archiver):
        await eng.dispose()
    archived = [r["messageId"] for m in archive.months() for r in archive.records(m, "messages")]
    assert archived == ["m-1", "m-2"]


async def test_the_archive_turn_is_taken_once_per_transaction(engine: AsyncEngine) -> None:
    taken: list[str] = []

    def spy(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "pg_advisory_xact_lock" in statement:
            taken.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", spy)
    at = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        for n in (1, 2):  # two transactions, each writing both archived tables
            order = Order(n, 1, (OrderLine("pen", 1, 100),), at)
            async with engine.begin() as conn:
                await analytics_store.record_messages(conn, [(f"m-{n}", b"{}")], topic="t", at=at)
                await analytics_store.record_orders(conn, [(order, f"m-{n}")], source="x")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", spy)
    assert len(taken) == (2 if engine.dialect.name == "postgresql" else 0)
