"""Commerce rules: merging requested lines, freezing prices, totals in cents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paycore.commerce.domain import (
    CommerceError,
    EmptyOrder,
    InvalidQuantity,
    Order,
    OrderLine,
    UnknownProducts,
    merge_lines,
    merge_requested,
    normalize_email,
    price_lines,
)


def test_merge_requested_merges_repeated_names() -> None:
    merged = merge_requested([("pen", 2), ("book", 1), ("pen", 3), ("book", 4), ("ink", 1)])
    assert merged == {"pen": 5, "book": 5, "ink": 1}
    assert list(merged) == ["pen", "book", "ink"]  # first-seen order kept


def test_merge_requested_single_line() -> None:
    assert merge_requested([("pen", 1)]) == {"pen": 1}


@pytest.mark.parametrize("quantity", [0, -1, -100])
def test_merge_requested_refuses_non_positive_quantity(quantity: int) -> None:
    with pytest.raises(InvalidQuantity, match="'pen'") as caught:
        merge_requested([("book", 2), ("pen", quantity)])
    assert caught.value.code == "invalid-quantity"
    assert isinstance(caught.value, CommerceError)


def test_merge_requested_refuses_a_zero_even_when_the_name_repeats_positively() -> None:
    with pytest.raises(InvalidQuantity):
        merge_requested([("pen", 5), ("pen", 0)])


def test_merge_requested_refuses_an_empty_order() -> None:
    with pytest.raises(EmptyOrder) as caught:
        merge_requested([])
    assert caught.value.code == "empty-order"


def test_price_lines_freezes_unit_prices() -> None:
    lines = price_lines({"pen": 5, "book": 1}, {"pen": 150, "book": 1_000, "unused": 1})
    assert lines == (OrderLine("pen", 5, 150), OrderLine("book", 1, 1_000))
    assert [line.total_cents for line in lines] == [750, 1_000]


def test_price_lines_lists_every_missing_product_sorted() -> None:
    with pytest.raises(UnknownProducts) as caught:
        price_lines({"zeta": 1, "pen": 2, "alpha": 3, "mid": 1}, {"pen": 100})
    assert caught.value.names == ["alpha", "mid", "zeta"]
    assert str(caught.value) == "unknown product(s): alpha, mid, zeta"
    assert caught.value.code == "unknown-product"


def test_order_totals_in_cents() -> None:
    order = Order(
        order_id=1001,
        customer_id=1,
        lines=(OrderLine("lápis", 100, 110), OrderLine("caderno", 10, 100)),
        ordered_at=datetime(2025, 7, 1, tzinfo=UTC),
    )
    assert order.total_cents == 12_000
    assert order.item_count == 110
    assert isinstance(order.total_cents, int)


def test_order_line_total_is_exact_for_amounts_floats_get_wrong() -> None:
    # 3 * 0.1 as floats is 0.30000000000000004
    assert OrderLine("x", 3, 10).total_cents == 30
    assert OrderLine("x", 1_000_000, 99_999_999).total_cents == 99_999_999_000_000


def test_merge_lines_merges_same_product_and_price_only() -> None:
    lines = [
        OrderLine("a", 1, 100),
        OrderLine("b", 3, 50),
        OrderLine("a", 2, 100),
        OrderLine("a", 1, 200),
    ]
    assert merge_lines(lines) == (
        OrderLine("a", 3, 100),
        OrderLine("b", 3, 50),
        OrderLine("a", 1, 200),
    )
    assert sum(x.total_cents for x in merge_lines(lines)) == sum(x.total_cents for x in lines)


def test_merge_lines_empty() -> None:
    assert merge_lines([]) == ()


def test_normalize_email() -> None:
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"
