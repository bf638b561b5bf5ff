"""Card transactions of the payment gateway (seed 001): brands, the Luhn check and the
processor's decision rules. Standard library only.

:func:`decide` applies the rules in the order SPEC 001 gives, and the first one broken wins:

1. the number is all digits, of a known brand (by IIN range and length) and passes the Luhn
   check, else ``invalid credit card number``;
2. the expiry month is 1..12, else ``invalid expiration month``;
3. the expiry year is not past, else ``invalid expiration year``; a past month of the current
   year is refused too, as ``invalid expiration month`` (the year itself is fine, the month is
   what lies in the past). A card is valid through the last day of its expiry month;
4. the CVV is 3 digits, 4 for American Express, else ``invalid cvv``;
5. the amount is at least 1.00, else ``the amount must be greater than 1``; at most 1000.00,
   else ``you dont have limit for this transaction`` (1.00 and 1000.00 are approved).

Amounts are integer cents throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

APPROVED: Final = "approved"
REJECTED: Final = "rejected"
PENDING: Final = "pending"
STATUSES: Final = (PENDING, APPROVED, REJECTED)

INVALID_NUMBER: Final = "invalid credit card number"
INVALID_MONTH: Final = "invalid expiration month"
INVALID_YEAR: Final = "invalid expiration year"
INVALID_CVV: Final = "invalid cvv"
AMOUNT_TOO_LOW: Final = "the amount must be greater than 1"
OVER_LIMIT: Final = "you dont have limit for this transaction"

MIN_CENTS: Final = 100
MAX_CENTS: Final = 100_000

BRANDS: Final = ("visa", "mastercard", "amex", "discover", "diners", "jcb", "elo", "hipercard")


@dataclass(frozen=True, slots=True)
class _Range:
    brand: str
    low: int  # IIN prefix range, both ends included, compared on the first `width` digits
    high: int
    lengths: frozenset[int]
    width: int


def _ranges(brand: str, lengths: tuple[int, ...], *spans: tuple[int, int] | int) -> list[_Range]:
    bounds = [(s, s) if isinstance(s, int) else s for s in spans]
    return [_Range(brand, lo, hi, frozenset(lengths), len(str(lo))) for lo, hi in bounds]


# Elo and Hipercard issue inside ranges that also look like Visa, Mastercard, Discover or
# Diners, so they are tried first.
_ELO_SPANS: Final[tuple[tuple[int, int] | int, ...]] = (
    401178,
    401179,
    431274,
    438935,
    451416,
    457393,
    457631,
    457632,
    504175,
    (506699, 506778),
    (509000, 509999),
    627780,
    636297,
    636368,
    (650031, 650033),
    (650035, 650051),
    (650405, 650439),
    (650485, 650538),
    (650541, 650598),
    (650700, 650718),
    (650720, 650727),
    (650901, 650978),
    (651652, 651679),
    (655000, 655019),
    (655021, 655058),
)
_IIN_TABLE: Final[tuple[_Range, ...]] = (
    *_ranges("elo", (16,), *_ELO_SPANS),
    *_ranges("hipercard", (13, 16, 19), 606282, 637095, 637568, 637599, 637609, 637612),
    *_ranges("hipercard", (19,), 384100, 384140, 384160),
    *_ranges("amex", (15,), 34, 37),
    *_ranges("diners", (14, 15, 16, 17, 18, 19), (300, 305), 3095, 36, 38, 39),
    *_ranges("jcb", (16, 17, 18, 19), (3528, 3589)),
    *_ranges("discover", (16, 17, 18, 19), 6011, (622126, 622925), (644, 649), 65),
    *_ranges("mastercard", (16,), (51, 55), (2221, 2720)),
    *_ranges("visa", (13, 16, 19), 4),
)
# every range starts and ends on the same first digit: look only at the ones it can be
_BY_FIRST_DIGIT: Final = {
    d: tuple(r for r in _IIN_TABLE if str(r.low)[0] == d) for d in "0123456789"
}


def brand_of(number: str) -> str | None:
    """The brand whose IIN range and length fit the number (Luhn not checked), or None."""
    if not number.isascii() or not number.isdigit():
        return None
    size = len(number)
    for r in _BY_FIRST_DIGIT.get(number[:1], ()):
        if size in r.lengths and r.width <= size and r.low <= int(number[: r.width]) <= r.high:
            return r.brand
    return None


def luhn_valid(number: str) -> bool:
    """Whether the digits pass the Luhn (mod 10) check."""
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def last4(number: str) -> str:
    return number[-4:]


@dataclass(frozen=True, slots=True)
class Card:
    """What the processor needs of a card (it travels encrypted)."""

    number: str
    holder: str
    exp_month: int
    exp_year: int
    cvv: str

    def __repr__(self) -> str:  # never print the number or the CVV
        return f"Card(brand={brand_of(self.number)!r}, last4={last4(self.number)!r})"


@dataclass(frozen=True, slots=True)
class Decision:
    status: str
    error_message: str

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


def _rejected(message: str) -> Decision:
    return Decision(REJECTED, message)


def decide(card: Card, amount_cents: int, today: date) -> Decision:
    """The processor's verdict on a transaction, rules in SPEC order (see the module doc)."""
    brand = brand_of(card.number)
    if brand is None or not luhn_valid(card.number):
        return _rejected(INVALID_NUMBER)
    if not 1 <= card.exp_month <= 12:
        return _rejected(INVALID_MONTH)
    if card.exp_year < today.year:
        return _rejected(INVALID_YEAR)
    if card.exp_year == today.year and card.exp_month < today.month:
        return _rejected(INVALID_MONTH)
    cvv_length = 4 if brand == "amex" else 3
    if len(card.cvv) != cvv_length or not (card.cvv.isascii() and card.cvv.isdigit()):
        return _rejected(INVALID_CVV)
    if amount_cents < MIN_CENTS:
        return _rejected(AMOUNT_TOO_LOW)
    if amount_cents > MAX_CENTS:
        return _rejected(OVER_LIMIT)
    return Decision(APPROVED, "")
