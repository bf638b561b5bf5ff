"""A loan's repayment plan, with no database: the monthly instalments of a Price loan (a fixed
payment) or a SAC loan (a constant amortization), each with its due date, payment, interest,
amortization and the balance left after it, all in centavos.

A rate is a ``Decimal`` fraction (``Decimal("0.015")`` is 1.5 %) per month or per year; a
yearly rate becomes the monthly rate that compounds to it, (1 + a)^(1/12) - 1. Every rate is
computed to ``PRECISION`` digits in a local decimal context. An instalment's interest is the
balance before it times the monthly rate, rounded to the centavo by ``ROUNDING``; the last
instalment amortizes whatever balance is left, so the amortizations add up to the principal
exactly and the plan ends at zero. ``simulate`` checks every term and raises ``InvalidLoan``
naming the first one that is wrong.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from typing import TypeVar

from paycore.banking.ledger.domain import MAX_AMOUNT
from paycore.platform.errors import DomainError

PRECISION = 50
"""Significant digits of every rate computation."""
ROUNDING = ROUND_HALF_EVEN
"""How an amount is rounded to the centavo: half to even (the rule of ABNT NBR 5891), so that
over a long plan the halves rounded up and down even out."""
MAX_TERM = 420
"""The longest term, in months (35 years)."""
MAX_RATE = Decimal(10)
"""The highest rate taken, per its period: 1,000 %."""
MAX_PRINCIPAL = MAX_AMOUNT
"""The largest principal, in centavos: the most one ledger transfer pays out."""
MAX_FIRST_DUE_MONTHS = 12
"""How many months after the start the first instalment may fall due, at most: each instalment
charges one month of interest, so a longer wait would be interest the plan does not charge."""


class Period(StrEnum):
    """What a rate is per."""

    MONTH = "month"
    YEAR = "year"


class System(StrEnum):
    """How the principal is repaid."""

    PRICE = "price"  # a fixed payment: PMT = P·i / (1 - (1 + i)^-n)
    SAC = "sac"  # a constant amortization: P / n


class InvalidLoan(DomainError):
    """A loan's terms break a rule: ``field`` names the term, the detail says what is wrong."""

    code = "invalid-loan"
    status = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail, field=field)
        self.field = field


@dataclass(frozen=True, slots=True)
class Installment:
    """One instalment: ``payment`` (= ``interest`` + ``amortization``) due on ``due_date``,
    and the ``balance`` left after it, in centavos."""

    number: int
    due_date: date
    payment: int
    interest: int
    amortization: int
    balance: int


@dataclass(frozen=True, slots=True)
class Plan:
    """A loan's instalments. ``start`` is the day the principal is paid out (the effective
    cost and the IOF count days from it); ``monthly_rate`` is the rate each instalment's
    interest is charged at."""

    system: System
    principal: int
    monthly_rate: Decimal
    start: date
    installments: tuple[Installment, ...]

    @property
    def term(self) -> int:
        return len(self.installments)

    @property
    def total_interest(self) -> int:
        return sum(i.interest for i in self.installments)

    @property
    def total_paid(self) -> int:
        return sum(i.payment for i in self.installments)

    def flows(self) -> list[tuple[date, int]]:
        """What the borrower pays: each due date with its payment."""
        return [(i.due_date, i.payment) for i in self.installments]


def simulate(
    principal: int,
    rate: Decimal,
    *,
    period: Period,
    term: int,
    system: System,
    start: date,
    first_due: date | None = None,
) -> Plan:
    """The plan of a loan of ``principal`` centavos at ``rate`` (a fraction, per ``period``),
    paid out on ``start`` and repaid by ``system`` in ``term`` monthly instalments, the first
    due on ``first_due`` (by default a month after ``start``; see ``due_dates``)."""
    principal = _checked_principal(principal)
    monthly = monthly_rate(rate, period)
    term = _checked_term(term)
    system = _member(System, system, "system")
    dates = due_dates(start, term, first_due)
    if system is System.PRICE:
        rows = _price(principal, monthly, term)
    else:
        rows = _sac(principal, monthly, term)
    installments = tuple(
        Installment(number, due, interest + amortization, interest, amortization, balance)
        for number, (due, (interest, amortization, balance)) in enumerate(
            zip(dates, rows, strict=True), start=1
        )
    )
    return Plan(system, principal, monthly, start, installments)


def monthly_rate(rate: Decimal, period: Period) -> Decimal:
    """The monthly rate of ``rate`` per ``period``: the rate itself for a month; for a year,
    the rate that compounds to it in 12 months, (1 + a)^(1/12) - 1 (not a/12)."""
    rate = _checked_rate(rate)
    period = _member(Period, period, "period")
    if period is Period.MONTH or rate == 0:
        return rate
    with localcontext(prec=PRECISION):
        return (1 + rate) ** (Decimal(1) / 12) - 1


def annual_rate(monthly: Decimal) -> Decimal:
    """The yearly rate a monthly rate compounds to: (1 + i)^12 - 1."""
    monthly = _checked_rate(monthly)
    with localcontext(prec=PRECISION):
        return (1 + monthly) ** 12 - 1


def interest(balance: int, monthly: Decimal) -> int:
    """A month's interest on ``balance`` centavos: balance · i, rounded by ``ROUNDING``."""
    with localcontext(prec=PRECISION):
        return centavos(balance * monthly)


def centavos(amount: Decimal) -> int:
    """An amount of centavos rounded to a whole one by ``ROUNDING``."""
    return int(amount.to_integral_value(rounding=ROUNDING))


def due_dates(start: date, term: int, first_due: date | None = None) -> list[date]:
    """The ``term`` due dates of a loan paid out on ``start``: ``first_due`` (by default a
    month after ``start``), then the same day of each month after it, or the month's last day
    when it has no such day (Jan 31, Feb 28, Mar 31)."""
    start = _checked_date(start, "start")
    term = _checked_term(term)
    try:
        first = add_months(start, 1) if first_due is None else _checked_date(first_due, "first_due")
        latest = add_months(start, MAX_FIRST_DUE_MONTHS)
        if first <= start:
            raise InvalidLoan(
                "first_due", f"the first due date must be after the start ({start}), got {first}"
            )
        if first > latest:
            raise InvalidLoan(
                "first_due",
                f"the first due date may be {MAX_FIRST_DUE_MONTHS} months after the start at "
                f"most ({latest}), got {first}",
            )
        return [add_months(first, months) for months in range(term)]
    except OverflowError:
        raise InvalidLoan("start", "the plan would run past the year 9999") from None


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, on the same day of the month or the new
    month's last day; ``OverflowError`` past the year 9999."""
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    if not 1 <= year <= 9999:
        raise OverflowError(f"{day} plus {months} months is out of the calendar")
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


# --- the two systems -----------------------------------------------------------------------

Row = tuple[int, int, int]
"""An instalment's interest, amortization and the balance after it."""


def _price(principal: int, monthly: Decimal, term: int) -> list[Row]:
    """Price: every instalment but the last pays PMT = P·i / (1 - (1 + i)^-n) (P/n at a zero
    rate) rounded to the centavo. Where that rounding up would repay the loan before its last
    instalment (tiny principals over long terms), the payment is the largest that does not."""
    with localcontext(prec=PRECISION):
        if monthly == 0:
            exact = Decimal(principal) / term
        else:
            exact = principal * monthly / (1 - (1 + monthly) ** -term)
        payment = centavos(exact)
    rows = _price_rows(principal, monthly, term, payment)
    if rows is None:
        payment = _largest_fitting_payment(principal, monthly, term, too_much=payment)
        rows = _price_rows(principal, monthly, term, payment)
        assert rows is not None  # it fits
    return rows


def _price_rows(principal: int, monthly: Decimal, term: int, payment: int) -> list[Row] | None:
    """The rows of a fixed ``payment``; ``None`` if the balance falls below zero before the
    last instalment."""
    rows = []
    balance = principal
    for _ in range(term - 1):
        charged = interest(balance, monthly)
        balance -= payment - charged
        if balance < 0:
            return None
        rows.append((charged, payment - charged, balance))
    rows.append(_last(balance, monthly))
    return rows


def _largest_fitting_payment(principal: int, monthly: Decimal, term: int, too_much: int) -> int:
    """The largest payment below ``too_much`` that leaves no balance below zero. The lower the
    payment, the higher every balance (balance + its rounded interest never falls as the
    balance grows), and a payment of 0 only lets the balance grow: a bisection finds it."""
    fits, does_not = 0, too_much
    while does_not - fits > 1:
        middle = (fits + does_not) // 2
        if _price_rows(principal, monthly, term, middle) is None:
            does_not = middle
        else:
            fits = middle
    return fits


def _sac(principal: int, monthly: Decimal, term: int) -> list[Row]:
    """SAC: every instalment but the last amortizes P/n rounded down to the centavo, so the
    last one takes the rest (0 to n-1 centavos more) and no balance falls below zero."""
    share = principal // term
    rows = []
    balance = principal
    for _ in range(term - 1):
        charged = interest(balance, monthly)
        balance -= share
        rows.append((charged, share, balance))
    rows.append(_last(balance, monthly))
    return rows


def _last(balance: int, monthly: Decimal) -> Row:
    """The last instalment: the month's interest, and the whole balance left."""
    return (interest(balance, monthly), balance, 0)


# --- checks --------------------------------------------------------------------------------

Choice = TypeVar("Choice", bound=StrEnum)


def _member(kind: type[Choice], value: object, field: str) -> Choice:
    """``value`` as a member of ``kind`` (a member, or its value)."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in {member.value for member in kind}:
        return kind(value)
    options = " or ".join(member.value for member in kind)
    raise InvalidLoan(field, f"the {field} is {options}, not {value!r}")


def _checked_principal(principal: object) -> int:
    if isinstance(principal, bool) or not isinstance(principal, int):
        raise InvalidLoan(
            "principal", f"the principal is a whole number of centavos, not {principal!r}"
        )
    if principal <= 0:
        raise InvalidLoan(
            "principal", f"the principal must be above zero, got {principal} centavos"
        )
    if principal > MAX_PRINCIPAL:
        raise InvalidLoan(
            "principal",
            f"the principal may be {MAX_PRINCIPAL} centavos at most, got {principal}",
        )
    return principal


def _checked_rate(rate: object) -> Decimal:
    if isinstance(rate, bool) or not isinstance(rate, Decimal | int):
        raise InvalidLoan("rate", f"the rate is a Decimal fraction (0.015 is 1.5 %), not {rate!r}")
    rate = Decimal(rate)
    if not rate.is_finite():
        raise InvalidLoan("rate", f"the rate must be a finite number, got {rate}")
    if rate < 0:
        raise InvalidLoan("rate", f"the rate may not be negative, got {_shown(rate)}")
    if rate > MAX_RATE:
        raise InvalidLoan(
            "rate", f"the rate may be {_shown(MAX_RATE)} a period at most, got {_shown(rate)}"
        )
    return rate


def _shown(rate: Decimal) -> str:
    """A rate as a fraction and a percent: ``0.015 (1.5 %)``."""
    with localcontext(prec=PRECISION):
        return f"{rate} ({(rate * 100).normalize():f} %)"


def _checked_term(term: object) -> int:
    if isinstance(term, bool) or not isinstance(term, int):
        raise InvalidLoan("term", f"the term is a whole number of months, not {term!r}")
    if term < 1:
        raise InvalidLoan("term", f"the term must be at least 1 month, got {term}")
    if term > MAX_TERM:
        raise InvalidLoan(
            "term", f"the term may be {MAX_TERM} months (35 years) at most, got {term}"
        )
    return term


def _checked_date(day: object, field: str) -> date:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidLoan(field, f"the {field} is a date (no time of day), not {day!r}")
    return day
