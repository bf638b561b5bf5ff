"""The in-memory analytics board: idempotent recording and correct rankings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from paycore.commerce.analytics.board import KEEP, RANKINGS, Entry, MemoryBoard
from paycore.commerce.domain import Order, OrderLine

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _order(order_id: int, customer_id: int, *lines: tuple[str, int, int], minute: int = 0) -> Order:
    return Order(
        order_id,
        customer_id,
        tuple(OrderLine(p, q, c) for p, q, c in lines),
        T0 + timedelta(minutes=minute),
    )


def _scores(entries: list[Entry]) -> dict[str, int]:
    return {e.member: e.score for e in entries}


async def test_record_is_idempotent_per_order_id() -> None:
    board = MemoryBoard()
    order = _order(1, 10, ("pen", 2, 150))
    assert await board.record(order) is True
    before = await board.snapshot(10)
    assert await board.record(order) is False
    # even a different payload under the same id is not counted again
    assert await board.record(_order(1, 99, ("book", 9, 999))) is False
    assert await board.snapshot(10) == before
    assert _scores(before["customersByOrders"]) == {"10": 1}
    assert _scores(before["productsByQuantity"]) == {"pen": 2}


async def test_rankings_over_several_orders_and_customers() -> None:
    board = MemoryBoard()
    orders = [
        _order(1, 10, ("pen", 2, 150), ("book", 1, 2_000), minute=1),  # 2300
        _order(2, 10, ("pen", 5, 150), minute=2),  # 750
        _order(3, 20, ("ink", 1, 5_000), minute=3),  # 5000
        _order(4, 10, ("book", 2, 2_000), minute=4),  # 4000
        _order(5, 30, ("pen", 1, 150), ("ink", 1, 5_000), minute=5),  # 5150
    ]
    for order in orders:
        assert await board.record(order) is True
    snap = await board.snapshot(10)
    assert set(snap) == set(RANKINGS)

    # a customer with 3 orders has 3 (the seed always reported 1)
    assert snap["customersByOrders"][0] == Entry("10", 3)
    assert _scores(snap["customersByOrders"]) == {"10": 3, "20": 1, "30": 1}
    assert snap["customersBySpend"] == [Entry("10", 7_050), Entry("30", 5_150), Entry("20", 5_000)]
    assert snap["productsByQuantity"] == [Entry("pen", 8), Entry("book", 3), Entry("ink", 2)]
    assert snap["productsByValue"] == [
        Entry("ink", 10_000),
        Entry("book", 6_000),
        Entry("pen", 1_200),
    ]
    assert [e.member for e in snap["mostExpensiveOrders"]] == ["5", "3", "4", "1", "2"]
    assert snap["mostExpensiveOrders"][0].score == 5_150
    assert [e.member for e in snap["recentOrders"]] == ["5", "4", "3", "2", "1"]
    assert snap["recentOrders"][0].score == int((T0 + timedelta(minutes=5)).timestamp() * 1000)


async def test_snapshot_limit_keeps_the_highest_first() -> None:
    board = MemoryBoard()
    for i in range(1, 8):
        await board.record(_order(i, i, (f"p{i}", i, 100 * i), minute=i))
    snap = await board.snapshot(3)
    for name, entries in snap.items():
        assert len(entries) == 3, name
        scores = [e.score for e in entries]
        assert scores == sorted(scores, reverse=True), name
    assert [e.member for e in snap["productsByQuantity"]] == ["p7", "p6", "p5"]
    assert [e.member for e in snap["mostExpensiveOrders"]] == ["7", "6", "5"]
    assert [e.member for e in snap["recentOrders"]] == ["7", "6", "5"]


async def test_order_lists_keep_at_most_keep_entries() -> None:
    board = MemoryBoard()
    total = 3 * KEEP + 25
    # totals go down while time goes up: the most expensive are the oldest
    for i in range(1, total + 1):
        await board.record(_order(i, i % 7, ("pen", 1, 10_000 - i), minute=i))
    assert len(board.scores["mostExpensiveOrders"]) < 2 * KEEP  # trimmed as it goes
    snap = await board.snapshot(total)
    assert len(snap["mostExpensiveOrders"]) == len(snap["recentOrders"]) == KEEP
    assert [e.member for e in snap["mostExpensiveOrders"]] == [str(i) for i in range(1, KEEP + 1)]
    assert [e.member for e in snap["recentOrders"]] == [
        str(i) for i in range(total, total - KEEP, -1)
    ]
    # the counters themselves are not truncated
    assert sum(e.score for e in snap["customersByOrders"]) == total
    assert _scores(snap["productsByQuantity"]) == {"pen": total}


async def test_empty_board_snapshot() -> None:
    snap = await MemoryBoard().snapshot(5)
    assert snap == {name: [] for name in RANKINGS}
