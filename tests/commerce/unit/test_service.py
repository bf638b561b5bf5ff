"""Commerce use cases on a real SQLite database: customers, products, orders with their
outbox event in the same transaction, and the analytics side's idempotent recording."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce import domain, messages
from paycore.commerce.analytics import service as analytics_service
from paycore.commerce.analytics import store as analytics_store
from paycore.commerce.analytics.board import Entry, MemoryBoard
from paycore.commerce.domain import (
    Customer,
    EmptyOrder,
    InvalidQuantity,
    Order,
    OrderLine,
    Product,
    UnknownProducts,
)
from paycore.commerce.orders import service as order_service
from paycore.commerce.orders import store as order_store
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database

Count = Callable[..., Awaitable[int]]


async def _customer(
    engine: AsyncEngine, email: str = "alice@example.com", username: str = "alice"
) -> Customer:
    async with Database(engine).transaction() as tx:
        return await order_service.create_customer(tx, email=email, username=username)


async def _product(engine: AsyncEngine, name: str, cents: int) -> Product:
    async with Database(engine).transaction() as tx:
        return await order_service.create_product(tx, name=name, value_cents=cents)


async def _place(engine: AsyncEngine, email: str, items: list[tuple[str, int]]) -> Order:
    """An order placed as the API places it: checked against the catalog, then written by the
    order writer (group commit)."""
    db = Database(engine)
    pending = await order_service.prepare_order(
        order_store.Catalog(db.connect), email=email, items=items
    )
    writer = order_service.order_writer(db)
    try:
        return await writer.submit(pending)
    finally:
        await writer.stop()


async def _outbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox).order_by(outbox.c.seq))).all())


# --- customers ---------------------------------------------------------------------------------


async def test_create_customer_normalises_the_email(engine: AsyncEngine) -> None:
    row = await _customer(engine, "  Alice@Example.COM ", "  alice  ")
    assert row.email == "alice@example.com"
    assert row.username == "alice"
    assert isinstance(row.id, int)
    async with engine.connect() as conn:
        found = await order_store.find_customer(conn, email="alice@example.com")
    assert found is not None
    assert found.id == row.id


async def test_duplicate_email_is_a_conflict(engine: AsyncEngine, count_rows: Count) -> None:
    await _customer(engine, "alice@example.com", "alice")
    with pytest.raises(domain.Conflict, match="email") as caught:
        await _customer(engine, "ALICE@example.com", "someone-else")
    assert caught.value.code == "conflict"
    assert await count_rows(order_store.customers) == 1


async def test_duplicate_username_is_a_conflict(engine: AsyncEngine, count_rows: Count) -> None:
    await _customer(engine, "alice@example.com", "alice")
    with pytest.raises(domain.Conflict, match="username"):
        await _customer(engine, "other@example.com", "alice")
    assert await count_rows(order_store.customers) == 1


@pytest.mark.parametrize("username", ["", "   "])
async def test_blank_username_is_invalid(
    engine: AsyncEngine, count_rows: Count, username: str
) -> None:
    with pytest.raises(domain.InvalidValue) as caught:
        await _customer(engine, "alice@example.com", username)
    assert caught.value.code == "invalid-value"
    assert await count_rows(order_store.customers) == 0


# --- products ----------------------------------------------------------------------------------


async def test_create_product(engine: AsyncEngine) -> None:
    row = await _product(engine, " lápis ", 110)
    assert (row.name, row.value_cents) == ("lápis", 110)


async def test_duplicate_product_is_a_conflict(engine: AsyncEngine, count_rows: Count) -> None:
    await _product(engine, "pen", 150)
    with pytest.raises(domain.Conflict, match="pen"):
        await _product(engine, "pen", 999)
    assert await count_rows(order_store.products) == 1


@pytest.mark.parametrize(("name", "cents"), [("pen", 0), ("pen", -1), ("  ", 100)])
async def test_invalid_product(
    engine: AsyncEngine, count_rows: Count, name: str, cents: int
) -> None:
    with pytest.raises(domain.InvalidValue):
        await _product(engine, name, cents)
    assert await count_rows(order_store.products) == 0


# --- orders ------------------------------------------------------------------------------------


async def _shop(engine: AsyncEngine) -> int:
    customer = await _customer(engine)
    await _product(engine, "lápis", 110)
    await _product(engine, "caderno", 100)
    await _product(engine, "caneta", 333)
    return int(customer.id)


async def test_create_order_merges_names_and_totals_in_cents(
    engine: AsyncEngine, count_rows: Count
) -> None:
    customer_id = await _shop(engine)
    order = await _place(
        engine,
        "ALICE@example.com",
        [("lápis", 60), ("caderno", 10), (" lápis ", 40), ("caneta", 3)],
    )
    assert order.customer_id == customer_id
    assert sorted(order.lines) == sorted(
        [OrderLine("lápis", 100, 110), OrderLine("caderno", 10, 100), OrderLine("caneta", 3, 333)]
    )
    assert order.total_cents == 100 * 110 + 10 * 100 + 3 * 333 == 12_999
    async with engine.connect() as conn:
        stored = await order_store.load_order(conn, order.order_id)
        head = (
            await conn.execute(
                select(order_store.orders).where(order_store.orders.c.id == order.order_id)
            )
        ).one()
    assert stored is not None
    assert sorted(stored.lines) == sorted(order.lines)
    assert head.total_cents == 12_999
    assert await count_rows(order_store.order_items) == 3


async def test_unit_price_is_frozen_on_the_order(engine: AsyncEngine) -> None:
    await _shop(engine)
    order = await _place(engine, "alice@example.com", [("lápis", 100)])
    async with engine.begin() as conn:
        await conn.execute(
            update(order_store.products)
            .where(order_store.products.c.name == "lápis")
            .values(value_cents=999)
        )
    async with engine.connect() as conn:
        stored = await order_store.load_order(conn, order.order_id)
        head = (
            await conn.execute(
                select(order_store.orders).where(order_store.orders.c.id == order.order_id)
            )
        ).one()
    assert stored is not None
    assert stored.lines == (OrderLine("lápis", 100, 110),)
    assert stored.total_cents == head.total_cents == 11_000
    # a new order takes the new price
    again = await _place(engine, "alice@example.com", [("lápis", 1)])
    assert again.lines == (OrderLine("lápis", 1, 999),)


async def test_order_event_is_in_the_outbox(engine: AsyncEngine) -> None:
    customer_id = await _shop(engine)
    order = await _place(engine, "alice@example.com", [("lápis", 2), ("caderno", 1)])
    rows = await _outbox_rows(engine)
    assert len(rows) == 1
    row = rows[0]
    assert row.topic == messages.ORDER_CREATED == "commerce.order-created"
    assert row.key == str(customer_id)
    assert isinstance(orjson.loads(row.headers), dict)
    event = messages.decode_order_created(row.body)
    assert event.order_id == order.order_id
    assert event.customer_id == customer_id
    assert event.lines == order.lines
    assert event.total_cents == order.total_cents == 320
    # the event's timestamp is the order's, to the millisecond
    millis = order.ordered_at.replace(microsecond=order.ordered_at.microsecond // 1000 * 1000)
    assert event.ordered_at == millis


async def test_each_order_has_its_own_event(engine: AsyncEngine) -> None:
    await _shop(engine)
    first = await _place(engine, "alice@example.com", [("lápis", 1)])
    second = await _place(engine, "alice@example.com", [("caderno", 1)])
    rows = await _outbox_rows(engine)
    assert [messages.decode_order_created(r.body).order_id for r in rows] == [
        first.order_id,
        second.order_id,
    ]
    assert len({r.id for r in rows}) == 2


async def test_order_of_an_unknown_email_is_not_found(
    engine: AsyncEngine, count_rows: Count
) -> None:
    await _shop(engine)
    with pytest.raises(domain.NotFound, match=r"bob@example\.com") as caught:
        await _place(engine, "Bob@Example.com", [("lápis", 1)])
    assert caught.value.code == "not-found"
    assert await count_rows(order_store.orders) == 0
    assert await count_rows(outbox) == 0


async def test_order_of_unknown_products_writes_nothing(
    engine: AsyncEngine, count_rows: Count
) -> None:
    await _shop(engine)
    with pytest.raises(UnknownProducts) as caught:
        await _place(engine, "alice@example.com", [("lápis", 1), ("zzz", 1), ("aaa", 2)])
    assert caught.value.names == ["aaa", "zzz"]
    assert await count_rows(order_store.orders) == 0
    assert await count_rows(order_store.order_items) == 0
    assert await count_rows(outbox) == 0


@pytest.mark.parametrize(
    ("items", "error"),
    [
        ([("lápis", 0)], InvalidQuantity),
        ([("lápis", 2), ("lápis", -1)], InvalidQuantity),
        ([], EmptyOrder),
    ],
)
async def test_invalid_orders_write_nothing(
    engine: AsyncEngine,
    count_rows: Count,
    items: list[tuple[str, int]],
    error: type[Exception],
) -> None:
    await _shop(engine)
    with pytest.raises(error):
        await _place(engine, "alice@example.com", items)
    assert await count_rows(order_store.orders) == 0
    assert await count_rows(outbox) == 0


# --- analytics: recording orders once ----------------------------------------------------------

AT = datetime(2026, 1, 10, 12, tzinfo=UTC)


async def _record(
    engine: AsyncEngine, board: MemoryBoard, order: Order, message_id: str
) -> str | None:
    """Record one consumed order; its verdict (None: recorded, or a harmless repeat)."""
    received = analytics_service.Received(order, message_id, messages.encode_order_created(order))
    async with Database(engine).transaction() as tx:
        [verdict] = await analytics_service.record_orders(
            tx, [received], board=board, source="commerce", topic=messages.ORDER_CREATED
        )
    return verdict


async def test_record_order_once(engine: AsyncEngine, count_rows: Count) -> None:
    board = MemoryBoard()
    order = Order(1001, 7, (OrderLine("pen", 2, 150), OrderLine("book", 1, 2_000)), AT)
    assert await _record(engine, board, order, "msg-1") is None
    assert await count_rows(analytics_store.analytics_orders) == 1
    snap = await board.snapshot(10)
    assert snap["customersByOrders"] == [Entry("7", 1)]
    assert snap["customersBySpend"] == [Entry("7", 2_300)]

    # the same order again (lines in another order, a new message id): harmless repeat
    repeat = Order(1001, 7, (OrderLine("book", 1, 2_000), OrderLine("pen", 2, 150)), AT)
    assert await _record(engine, board, repeat, "msg-2") is None
    assert await board.snapshot(10) == snap

    async with engine.connect() as conn:
        assert await analytics_service.order_total(conn, 1001) == 2_300
        assert await analytics_service.order_count(conn, 7) == 1
    assert await count_rows(analytics_store.analytics_orders) == 1
    # every consumed message is kept, repeats included
    assert await count_rows(analytics_store.consumed_messages) == 2


async def test_same_order_id_with_other_content_is_refused(
    engine: AsyncEngine, count_rows: Count
) -> None:
    board = MemoryBoard()
    await _record(engine, board, Order(1001, 7, (OrderLine("pen", 2, 150),), AT), "msg-1")
    for other in [
        Order(1001, 7, (OrderLine("pen", 3, 150),), AT),
        Order(1001, 7, (OrderLine("pen", 2, 151),), AT),
        Order(1001, 8, (OrderLine("pen", 2, 150),), AT),
    ]:
        verdict = await _record(
            engine, board, other, f"msg-other-{other.customer_id}-{other.total_cents}"
        )
        assert verdict == "order 1001 was already recorded with other content"
    async with engine.connect() as conn:
        assert await analytics_service.order_total(conn, 1001) == 300
    assert (await board.snapshot(10))["customersByOrders"] == [Entry("7", 1)]
    assert await count_rows(analytics_store.analytics_orders) == 1


async def test_one_consumed_message_row_per_message(engine: AsyncEngine, count_rows: Count) -> None:
    board = MemoryBoard()
    ids = []
    for i in range(1, 4):
        order = Order(i, 7, (OrderLine("pen", i, 100),), AT)
        ids += [f"msg-{i}", f"msg-{i}-again"]
        assert await _record(engine, board, order, f"msg-{i}") is None
        assert await _record(engine, board, order, f"msg-{i}-again") is None
    async with engine.connect() as conn:
        rows = (await conn.execute(select(analytics_store.consumed_messages))).all()
    assert sorted(r.message_id for r in rows) == sorted(ids)
    assert all(r.topic == messages.ORDER_CREATED for r in rows)
    assert await count_rows(analytics_store.analytics_orders) == 3
    assert (await board.snapshot(10))["customersByOrders"] == [Entry("7", 3)]


async def test_a_repeat_completes_a_board_count_lost_in_a_crash(engine: AsyncEngine) -> None:
    order = Order(5, 9, (OrderLine("pen", 1, 100),), AT)
    assert await _record(engine, MemoryBoard(), order, "msg-1") is None
    fresh = MemoryBoard()  # the process restarted before the board counted it
    assert await _record(engine, fresh, order, "msg-2") is None
    assert (await fresh.snapshot(10))["customersByOrders"] == [Entry("9", 1)]


async def test_rebuild_board_counts_every_recorded_order(engine: AsyncEngine) -> None:
    board = MemoryBoard()
    for i, customer in enumerate([1, 1, 2, 1], start=1):
        await _record(engine, board, Order(i, customer, (OrderLine("pen", i, 100),), AT), f"m{i}")
    rebuilt = MemoryBoard()
    assert await analytics_service.rebuild_board(Database(engine), rebuilt) == 4
    assert await rebuilt.snapshot(10) == await board.snapshot(10)


async def test_customer_orders_pages(engine: AsyncEngine) -> None:
    board = MemoryBoard()
    totals = [1_000, 250, 10, 5]
    for i, cents in enumerate(totals, start=1):
        await _record(engine, board, Order(100 + i, 42, (OrderLine("x", 1, cents),), AT), f"m{i}")
    await _record(engine, board, Order(999, 43, (OrderLine("x", 1, 7),), AT), "m-other")
    async with engine.connect() as conn:
        first = await analytics_service.orders_of_customer(conn, 42, page=0, page_size=3)
        second = await analytics_service.orders_of_customer(conn, 42, page=1, page_size=3)
        beyond = await analytics_service.orders_of_customer(conn, 42, page=5, page_size=3)
        nobody = await analytics_service.orders_of_customer(conn, 77, page=0, page_size=3)
        with pytest.raises(domain.NotFound):
            await analytics_service.order_total(conn, 12345)
    assert [r.order_id for r in first.rows] == [101, 102, 103]
    assert [r.order_id for r in second.rows] == [104]
    assert beyond.rows == []
    for page in (first, second, beyond):
        assert (page.total_elements, page.total_pages) == (4, 2)
        assert page.total_on_orders_cents == sum(totals)
    assert (nobody.total_elements, nobody.total_pages, nobody.total_on_orders_cents) == (0, 0, 0)


# --- the order path's catalog cache ------------------------------------------------------------


class CountedConnect:
    """``engine.connect`` that counts the connections opened (one per catalog query)."""

    def __init__(self, engine: AsyncEngine, fail: bool = False) -> None:
        self.engine, self.opened, self.fail = engine, 0, fail

    def __call__(self) -> Any:
        self.opened += 1
        if self.fail:
            raise ConnectionError("database down")
        return self.engine.connect()


async def test_concurrent_misses_of_the_catalog_share_one_query(engine: AsyncEngine) -> None:
    customer = await _customer(engine)
    await _product(engine, "lápis", 110)
    await _product(engine, "caderno", 100)
    connect = CountedConnect(engine)
    catalog = order_store.Catalog(connect)

    ids = await asyncio.gather(*(catalog.customer_id("alice@example.com") for _ in range(50)))
    prices = await asyncio.gather(*(catalog.prices(["lápis", "caderno"]) for _ in range(50)))

    assert ids == [customer.id] * 50
    assert prices == [{"lápis": 110, "caderno": 100}] * 50
    assert connect.opened == 3  # one query for the customer, one per product
    assert await catalog.customer_id("alice@example.com") == customer.id
    assert connect.opened == 3  # hits touch no database


async def test_the_catalog_finds_what_was_created_after_a_miss(engine: AsyncEngine) -> None:
    connect = CountedConnect(engine)
    catalog = order_store.Catalog(connect)
    assert await catalog.customer_id("bob@example.com") is None
    assert await catalog.prices(["borracha"]) == {}
    bob = await _customer(engine, "bob@example.com", "bob")
    await _product(engine, "borracha", 50)
    assert await catalog.customer_id("bob@example.com") == bob.id
    assert await catalog.prices(["borracha"]) == {"borracha": 50}
    assert connect.opened == 4  # misses are not cached


async def test_a_failed_catalog_query_fails_every_waiter_and_is_retried(
    engine: AsyncEngine,
) -> None:
    alice = await _customer(engine)
    connect = CountedConnect(engine, fail=True)
    catalog = order_store.Catalog(connect)
    results = await asyncio.gather(
        *(catalog.customer_id("alice@example.com") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert connect.opened == 1
    connect.fail = False
    assert await catalog.customer_id("alice@example.com") == alice.id
