"""The commerce repository and use cases on both engines, schema built by the real migrations."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce import domain, messages
from paycore.commerce.analytics import service as analytics_service
from paycore.commerce.analytics import store as analytics_store
from paycore.commerce.analytics.archive import Archive
from paycore.commerce.analytics.board import MemoryBoard
from paycore.commerce.domain import Customer, Order, OrderLine, UnknownProducts
from paycore.commerce.orders import service as order_service
from paycore.commerce.orders import store as order_store
from paycore.platform.ids import uuid7
from paycore.platform.messaging import deadletters
from paycore.platform.messaging.bus import Delivery, Envelope, Subscription
from paycore.platform.messaging.consumer import Consumer, Verdicts
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database, Transaction


@pytest.fixture
def engine(each_engine: AsyncEngine) -> AsyncEngine:
    return each_engine


@pytest.fixture
def handed() -> list[Envelope]:
    """The events handed to the relay after each commit."""
    return []


@pytest.fixture
def db(engine: AsyncEngine, handed: list[Envelope]) -> Database:
    return Database(engine, handed.extend)


async def _customer(db: Database, email: str, username: str) -> Customer:
    async with db.transaction() as tx:
        return await order_service.create_customer(tx, email=email, username=username)


async def test_an_order_and_its_event_commit_together(
    db: Database, engine: AsyncEngine, handed: list[Envelope]
) -> None:
    async with db.transaction() as tx:
        await order_service.create_customer(tx, email="Ana@Example.com", username="ana")
        await order_service.create_product(tx, name="lápis", value_cents=110)
        await order_service.create_product(tx, name="caderno", value_cents=100)
    catalog, writer = order_store.Catalog(db.connect), order_service.order_writer(db)
    items = [("lápis", 60), ("caderno", 10), ("lápis", 40)]
    pending = await order_service.prepare_order(catalog, email="ana@example.com", items=items)
    order = await writer.submit(pending)
    assert order.total_cents == 12_000
    async with engine.connect() as conn:
        stored = await order_store.load_order(conn, order.order_id)
        events = (await conn.execute(select(outbox))).all()
    assert stored is not None
    assert stored.total_cents == 12_000
    assert [e.topic for e in events] == [messages.ORDER_CREATED]
    assert messages.decode_order_created(events[0].body).total_cents == 12_000

    assert [messages.decode_order_created(e.body).order_id for e in handed] == [order.order_id]

    with pytest.raises(UnknownProducts):
        await order_service.prepare_order(catalog, email="ana@example.com", items=[("x", 1)])
    await writer.stop()
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 1


async def test_concurrent_duplicate_customers_leave_one_and_a_conflict(db: Database) -> None:
    async def create() -> str:
        try:
            await _customer(db, "bia@example.com", "bia")
            return "created"
        except domain.Conflict:
            return "conflict"

    results = await asyncio.gather(*(create() for _ in range(5)))
    assert sorted(results) == ["conflict"] * 4 + ["created"]


async def test_analytics_read_model_answers_the_three_questions(
    db: Database, engine: AsyncEngine
) -> None:
    board = MemoryBoard()
    at = datetime(2026, 11, 2, tzinfo=UTC)
    for n in range(1, 6):
        order = Order(1000 + n, 7 if n <= 3 else 8, (OrderLine("caneta", n, 250),), at)
        received = analytics_service.Received(order, f"m{n}", b"{}")
        async with db.transaction() as tx:
            await analytics_service.record_orders(
                tx, [received], board=board, source="btg", topic="t"
            )
    async with engine.connect() as conn:
        assert await analytics_service.order_total(conn, 1002) == 500
        assert await analytics_service.order_count(conn, 7) == 3
        page = await analytics_service.orders_of_customer(conn, 7, page=1, page_size=2)
    assert page.total_elements == 3
    assert page.total_pages == 2
    assert page.total_on_orders_cents == (1 + 2 + 3) * 250
    assert [r.order_id for r in page.rows] == [1003]


async def test_dead_letters_and_their_replays_fit_both_engines(
    db: Database, engine: AsyncEngine
) -> None:
    async def reject(tx: Transaction, deliveries: list[Delivery]) -> Verdicts:
        return ["never valid"] * len(deliveries)

    consumer = Consumer(
        subscription=Subscription("some.topic", "g"),
        handler=reject,
        db=db,
        bus=None,  # type: ignore[arg-type]  # handle_batch needs no broker
    )
    await consumer.handle_batch([Delivery("some.topic", b"junk", uuid7(), None, {})])
    [letter] = await deadletters.list_letters(db)
    assert letter.error == "never valid"
    assert await deadletters.replay(db, [letter.id]) == 1
    async with engine.connect() as conn:
        ids = sorted((await conn.execute(select(outbox.c.id))).scalars())
    assert ids == sorted([f"dlq-{letter.id}", f"replay-{letter.id}"])


async def test_the_order_writer_commits_a_batch_and_hands_over_its_events(
    db: Database, engine: AsyncEngine, handed: list[Envelope]
) -> None:
    """The API's writer: one statement on PostgreSQL, a transaction on SQLite; same result."""
    ana = await _customer(db, "ana@example.com", "ana")
    bia = await _customer(db, "bia@example.com", "bia")
    handed.clear()
    writer = order_service.order_writer(db)
    lines = (OrderLine("caderno", 2, 1_050), OrderLine("lápis", 3, 110))
    pending = [
        order_service.PendingOrder(ana.id, lines, "cid-1"),
        order_service.PendingOrder(bia.id, lines[:1], "cid-2"),
    ]
    first = await asyncio.gather(*(writer.submit(p) for p in pending))  # one batch
    second = await writer.submit(pending[0])
    await writer.stop()
    placed = [*first, second]
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
    assert [e.key for e in handed] == [str(ana.id), str(bia.id), str(ana.id)]
    assert [e.headers["correlation-id"] for e in handed] == ["cid-1", "cid-2", "cid-1"]


async def test_a_refused_order_fails_alone_and_writes_nothing(
    db: Database, engine: AsyncEngine, handed: list[Envelope]
) -> None:
    ana = await _customer(db, "ana@example.com", "ana")
    handed.clear()
    writer = order_service.order_writer(db)
    lines = (OrderLine("caderno", 1, 100),)
    ghost = order_service.PendingOrder(999, lines, "")  # the customer does not exist
    outcomes = await asyncio.gather(
        writer.submit(ghost),
        writer.submit(order_service.PendingOrder(ana.id, lines, "")),
        return_exceptions=True,
    )
    await writer.stop()
    assert isinstance(outcomes[0], IntegrityError)  # its batch was refused, then tried alone
    assert isinstance(outcomes[1], Order)  # the other went through on its own
    [event] = handed
    assert messages.decode_order_created(event.body).order_id == outcomes[1].order_id
    async with engine.connect() as conn:
        for table in (order_store.orders, order_store.order_items, outbox):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 1


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
        async with Database(engine).transaction() as tx:
            await analytics_store.record_messages(tx, [("m-1", b"{}")], topic="t", at=at)
            first_open.set()
            await first_may_commit.wait()

    async def second() -> None:
        await first_open.wait()
        async with Database(other).transaction() as tx:
            await analytics_store.record_messages(tx, [("m-2", b"{}")], topic="t", at=at)

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_open.wait()
    await asyncio.sleep(0.3)
    assert not tasks[1].done()  # waiting for its turn
    archive = Archive(tmp_path / "archive")
    await analytics_service.flush_archive(
        Database(archiver), archive
    )  # the uncommitted row is not seen yet
    first_may_commit.set()
    await asyncio.gather(*tasks)
    await analytics_service.flush_archive(Database(archiver), archive)
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
            async with Database(engine).transaction() as tx:
                await analytics_store.record_messages(tx, [(f"m-{n}", b"{}")], topic="t", at=at)
                await analytics_store.record_orders(tx, [(order, f"m-{n}")], source="x")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", spy)
    assert len(taken) == (2 if engine.dialect.name == "postgresql" else 0)
