"""Money at the edge: decimals with at most 2 places in, integer cents inside, exact out."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import orjson

CENT = Decimal("0.01")


class MoneyError(ValueError):
    """An amount that is not a finite decimal with at most two places."""


MAX_CENTS = 10**15
"""The largest amount paycore takes, in cents (10^13 currency units): sums of many stay far
inside a 64-bit integer."""


def to_cents(amount: Decimal | int | str) -> int:
    """Exact conversion of a decimal amount to integer cents; refuses sub-cent precision."""
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation as exc:
        raise MoneyError(f"not a number: {amount!r}") from exc
    return cents_of_number(value)


def cents_of_number(value: Decimal | int) -> int:
    """A JSON number (an int, or the exact ``Decimal`` of a fraction) as integer cents:
    ``MoneyError`` if it is not finite, has more than two decimal places, or is beyond
    ``MAX_CENTS`` either way."""
    if isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise MoneyError("amount must be a finite number")
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    if exponent < -2 and any(digits[len(digits) + exponent + 2 :]):  # a digit past the cents
        raise MoneyError("amount must have at most 2 decimal places")
    if value.adjusted() > 15:  # far beyond the limit: not worth scaling
        raise MoneyError(f"amount must be at most {MAX_CENTS // 100}")
    cents = value.scaleb(2)  # exact: at most 18 significant digits are left
    if abs(cents) > MAX_CENTS:
        raise MoneyError(f"amount must be at most {MAX_CENTS // 100}")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    """Integer cents as a Decimal with exactly two places."""
    return (Decimal(cents) / 100).quantize(CENT)


def json_number(cents: int) -> orjson.Fragment:
    """Cents as a raw JSON number with two decimals (e.g. ``19.90``), no float involved."""
    return orjson.Fragment(str(from_cents(cents)).encode())
