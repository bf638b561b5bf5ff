"""Money at the edge: decimals with at most 2 places in, integer cents inside, exact out."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import orjson

CENT = Decimal("0.01")


class MoneyError(ValueError):
    """An amount that is not a finite decimal with at most two places."""


def to_cents(amount: Decimal | int | str) -> int:
    """Exact conversion of a decimal amount to integer cents; refuses sub-cent precision."""
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation as exc:
        raise MoneyError(f"not a number: {amount!r}") from exc
    if not value.is_finite():
        raise MoneyError("amount must be a finite number")
    exponent = value.as_tuple().exponent
    try:
        if isinstance(exponent, int) and exponent < -2 and value != value.quantize(CENT):
            raise MoneyError("amount must have at most 2 decimal places")
        return int((value * 100).to_integral_value())
    except ArithmeticError as exc:  # beyond the decimal context: Overflow, InvalidOperation
        raise MoneyError(f"amount out of range: {amount!r}"[:200]) from exc


def from_cents(cents: int) -> Decimal:
    """Integer cents as a Decimal with exactly two places."""
    return (Decimal(cents) / 100).quantize(CENT)


def json_number(cents: int) -> orjson.Fragment:
    """Cents as a raw JSON number with two decimals (e.g. ``19.90``), no float involved."""
    return orjson.Fragment(str(from_cents(cents)).encode())
