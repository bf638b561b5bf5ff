"""Money at the edge: exact decimals in, integer cents inside, exact JSON numbers out."""

from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest

from paycore.platform.money import MoneyError, from_cents, json_number, to_cents


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        (0, 0),
        (19, 1900),
        (-3, -300),
        ("19.90", 1990),
        ("19.9", 1990),
        ("0.01", 1),
        ("1.10", 110),
        (" 7.25 ", 725),
        ("-1.50", -150),
        ("1E+2", 10_000),
        (Decimal("0.1"), 10),
        (Decimal("1.000"), 100),  # trailing zeros beyond the cent are not sub-cent precision
        (Decimal("123456789012.34"), 12_345_678_901_234),
    ],
)
def test_to_cents_is_exact(amount: Decimal | int | str, cents: int) -> None:
    result = to_cents(amount)
    assert result == cents
    assert type(result) is int


def test_to_cents_of_many_values_never_drifts() -> None:
    # 0.29 * 100 as a float is 28.999999999999996; exact conversion must give 29
    assert to_cents("0.29") == 29
    assert to_cents(Decimal("0.57")) == 57
    assert sum(to_cents("0.10") for _ in range(3)) == 30


@pytest.mark.parametrize(
    "amount",
    [
        "1.005",
        Decimal("1.005"),
        1.005,  # a float with sub-cent precision (floats are not accepted as money)
        Decimal("0.001"),
        "1e-5",
        "NaN",
        "nan",
        "sNaN",
        Decimal("NaN"),
        "Infinity",
        "-Infinity",
        "inf",
        Decimal("Infinity"),
        float("nan"),
        "abc",
        "",
        "19,90",
        "1.2.3",
        "$5",
        "5 EUR",
        "1e999999",  # times 100 overflows the decimal context
        Decimal("1e999999"),
        "1234567890123456789012345678.001",  # quantized, more digits than the context holds
    ],
)
def test_to_cents_refuses(amount: object) -> None:
    with pytest.raises(MoneyError):
        to_cents(amount)  # type: ignore[arg-type]


def test_money_error_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(ValueError, match="2 decimal places"):
        to_cents("1.005")
    with pytest.raises(ValueError, match="finite"):
        to_cents("Infinity")
    with pytest.raises(ValueError, match="not a number"):
        to_cents("abc")


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "0.00"), (5, "0.05"), (110, "1.10"), (1990, "19.90"), (-5, "-0.05"), (100, "1.00")],
)
def test_from_cents_has_exactly_two_places(cents: int, text: str) -> None:
    value = from_cents(cents)
    assert isinstance(value, Decimal)
    assert str(value) == text
    assert value.as_tuple().exponent == -2


def test_from_cents_large_amount_is_exact() -> None:
    assert str(from_cents(922_337_203_685_477_580)) == "9223372036854775.80"


@pytest.mark.parametrize("cents", [0, 1, 9, 10, 99, 100, 101, 1990, 123_456, -1, -250])
def test_cents_round_trip(cents: int) -> None:
    assert to_cents(from_cents(cents)) == cents


@pytest.mark.parametrize(
    ("cents", "raw"),
    [(110, b"1.10"), (1990, b"19.90"), (0, b"0.00"), (7, b"0.07"), (-5, b"-0.05")],
)
def test_json_number_is_a_raw_two_decimal_number(cents: int, raw: bytes) -> None:
    body = orjson.dumps({"value": json_number(cents)})
    assert body == b'{"value":' + raw + b"}"
    # a JSON number (not a string), and exact when read back as a decimal
    decoded = json.loads(body, parse_float=Decimal)
    assert decoded["value"] == Decimal(raw.decode())
    assert not isinstance(decoded["value"], str)
