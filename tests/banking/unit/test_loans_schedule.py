"""Loans' plans, effective cost and IOF (``paycore.banking.loans``): worked examples checked by
hand, then properties hypothesis checks on random loans against the formulas written out here
again, and every bad term refused with its name."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paycore.banking.loans.cost import annual_cost, cet
from paycore.banking.loans.iof import natural_person_iof
from paycore.banking.loans.schedule import (
    MAX_PRINCIPAL,
    InvalidLoan,
    Period,
    Plan,
    System,
    add_months,
    annual_rate,
    due_dates,
    interest,
    monthly_rate,
    simulate,
)

START = date(2026, 1, 15)
ONE_PERCENT = Decimal("0.01")


def plan(**changes: Any) -> Plan:
    terms: dict[str, Any] = {
        "principal": 1_000_000,  # 10,000.00
        "rate": ONE_PERCENT,
        "period": Period.MONTH,
        "term": 12,
        "system": System.PRICE,
        "start": START,
        **changes,
    }
    return simulate(terms.pop("principal"), terms.pop("rate"), **terms)


def column(p: Plan, name: str) -> list[int]:
    return [getattr(i, name) for i in p.installments]


def rounded(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


# --- worked examples -----------------------------------------------------------------------


def test_price_10000_at_1_percent_a_month_for_12_months() -> None:
    # PMT = 10000 · 0.01 / (1 - 1.01^-12) = 100 / 0.1125508 = 888.4879 -> 888.49
    p = plan()
    assert column(p, "payment") == [88849] * 11 + [88847]
    first, second, last = p.installments[0], p.installments[1], p.installments[-1]
    assert (first.interest, first.amortization, first.balance) == (10000, 78849, 921151)
    # 9211.51 · 1% = 92.1151 -> 92.12; 888.49 - 92.12 = 796.37; 9211.51 - 796.37 = 8415.14
    assert (second.interest, second.amortization, second.balance) == (9212, 79637, 841514)
    # the last amortizes the 879.67 left, with its 8.7967 -> 8.80 of interest
    assert (last.interest, last.amortization, last.balance) == (880, 87967, 0)
    assert p.total_interest == 66186  # 11 · 888.49 + 888.47 - 10000
    assert p.total_paid == 1_066_186


def test_sac_10000_at_1_percent_a_month_for_12_months() -> None:
    p = plan(system=System.SAC)
    # 10000 / 12 = 833.333… -> 833.33; the last takes 10000 - 11 · 833.33 = 833.37
    assert column(p, "amortization") == [83333] * 11 + [83337]
    assert column(p, "interest") == [
        10000,
        9167,
        8333,
        7500,
        6667,
        5833,
        5000,
        4167,
        3333,
        2500,
        1667,
        833,
    ]  # fmt: skip  (1% of 10000.00, 9166.67, 8333.34, … 833.37, each rounded)
    assert column(p, "payment")[:2] == [93333, 92500]
    assert p.installments[-1].payment == 83337 + 833
    assert p.total_interest == 65000


def test_at_a_zero_rate_the_payments_are_the_principal_shared_out() -> None:
    for system in System:
        p = plan(principal=100_000, rate=Decimal(0), term=3, system=system)
        assert column(p, "payment") == [33333, 33333, 33334]
        assert column(p, "interest") == [0, 0, 0]
        assert column(p, "balance") == [66667, 33334, 0]


def test_interest_is_rounded_half_to_even() -> None:
    # 1% of 2.50 is 0.025: 0.02 (to even), of 3.50 is 0.035: 0.04, of 2.51 is 0.0251: 0.03
    assert [interest(b, ONE_PERCENT) for b in (250, 350, 251, 249)] == [2, 4, 3, 2]
    p = plan(principal=250, term=1)
    assert (p.installments[0].interest, p.installments[0].payment) == (2, 252)


def test_a_price_payment_never_repays_the_loan_before_its_last_instalment() -> None:
    # 0.15 in 10 at 0%: PMT 0.015 rounds (half to even) to 0.02, and 9 of those are 0.18
    p = plan(principal=15, rate=Decimal(0), term=10)
    assert column(p, "payment") == [1] * 9 + [6]
    assert min(column(p, "balance")) == 0


def test_a_year_rate_compounds_monthly_not_divided_by_12() -> None:
    # 1.01^12 = 1.126825030…: 12.6825% a year is 1% a month, to the rounding of the 12.6825
    assert abs(monthly_rate(Decimal("0.126825"), Period.YEAR) - ONE_PERCENT) < Decimal("1e-8")
    exact = Decimal("0.126825030131969720661201")  # 1.01^12 - 1, every digit
    assert abs(monthly_rate(exact, Period.YEAR) - ONE_PERCENT) < Decimal("1e-45")
    assert abs(annual_rate(ONE_PERCENT) - exact) < Decimal("1e-45")
    assert monthly_rate(Decimal("0.12"), Period.YEAR) < Decimal("0.0095")  # a/12 would be 0.01
    yearly = plan(rate=Decimal("0.126825"), period=Period.YEAR)
    assert yearly.installments == plan().installments
    assert monthly_rate(Decimal(0), Period.YEAR) == 0


def test_due_dates_keep_the_day_or_fall_on_the_month_end() -> None:
    assert due_dates(date(2025, 12, 31), 5, date(2026, 1, 31)) == [
        date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30),
        date(2026, 5, 31),
    ]  # fmt: skip
    assert due_dates(date(2028, 1, 10), 2, date(2028, 1, 31))[1] == date(2028, 2, 29)
    # by default a month after the start, then the same day of each month after that
    assert due_dates(date(2026, 3, 15), 2) == [date(2026, 4, 15), date(2026, 5, 15)]
    assert due_dates(date(2026, 1, 31), 3) == [
        date(2026, 2, 28),
        date(2026, 3, 28),
        date(2026, 4, 28),
    ]
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)


def test_the_effective_cost_of_one_instalment_in_closed_form() -> None:
    # 10000.00 out on Jan 1, 10100.00 back on Feb 1 (31 days): (10100/received)^(365/31) - 1
    p = plan(term=1, start=date(2026, 1, 1))
    assert p.flows() == [(date(2026, 2, 1), 1_010_000)]
    with localcontext(prec=60):
        no_fees = (Decimal(10100) / 10000) ** (Decimal(365) / 31) - 1
        with_fees = (Decimal(10100) / 9900) ** (Decimal(365) / 31) - 1
    assert abs(cet(p) - no_fees) < Decimal("1e-20")
    assert abs(cet(p, fees=6_000, iof=4_000) - with_fees) < Decimal("1e-20")
    # 365/31 = 11.774; 1.01^11.774 = e^(11.774 · 0.0099503) = e^0.117157 = 1.124296
    assert str(no_fees)[:8] == "0.124296"


def test_flows_a_year_apart_cost_their_rate() -> None:
    # a million reais a year for two years on 1,735,537.19 received is 10% a year:
    # 1000000/1.1 + 1000000/1.21 = 1735537.190…; 365 and 730 days after the start
    flows = [(date(2026, 1, 1), 10**8), (date(2027, 1, 1), 10**8)]
    received = rounded(Decimal(10**8) / Decimal("1.1") + Decimal(10**8) / Decimal("1.21"))
    assert received == 173_553_719
    assert abs(annual_cost(date(2025, 1, 1), flows, received) - Decimal("0.1")) < Decimal("1e-8")


def test_the_iof_of_a_natural_person() -> None:
    # 0.38% of 10000.00 = 38.00; 0.0082% a day for 31 days of 10000.00 = 25.42
    one_month = natural_person_iof(plan(term=1, start=date(2026, 1, 1)))
    assert (one_month.additional, one_month.daily, one_month.total) == (3800, 2542, 6342)
    # 366 days (Feb 29, 2028 in between) count as 365: 10000.00 · 0.0082% · 365 = 299.30
    year = plan(term=1, start=date(2027, 3, 1), first_due=date(2028, 3, 1))
    assert natural_person_iof(year).daily == 29930
    # SAC in 2: 5000.00 for 31 days and 5000.00 for 59: 5000 · 0.000082 · 90 = 36.90
    two = plan(term=2, system=System.SAC, start=date(2026, 1, 1))
    assert natural_person_iof(two).daily == 3690


# --- properties ----------------------------------------------------------------------------

principals = st.one_of(st.integers(1, 10_000), st.integers(1, 10**12))
monthly_rates = st.decimals(min_value=0, max_value=Decimal("0.08"), places=6)
terms = st.integers(1, 420)
starts = st.dates(date(2000, 1, 1), date(2099, 12, 31))


@st.composite
def plans(draw: st.DrawFn, principal: st.SearchStrategy[int] = principals) -> Plan:
    period = draw(st.sampled_from(Period))
    rate = draw(monthly_rates if period is Period.MONTH else monthly_rates.map(lambda r: r * 12))
    start = draw(starts)
    first_due = draw(st.none() | st.integers(1, 365).map(lambda days: start + timedelta(days)))
    return simulate(
        draw(principal),
        rate,
        period=period,
        term=draw(terms),
        system=draw(st.sampled_from(System)),
        start=start,
        first_due=first_due,
    )


@settings(deadline=None)
@given(plans())
def test_a_plan_repays_exactly_its_principal(p: Plan) -> None:
    assert sum(column(p, "amortization")) == p.principal
    assert p.installments[-1].balance == 0
    assert min(column(p, "amortization")) >= 0
    before = p.principal
    for number, i in enumerate(p.installments, start=1):
        assert i.number == number
        assert i.balance == before - i.amortization >= 0
        assert i.payment == i.interest + i.amortization
        with localcontext(prec=80):
            assert i.interest == rounded(before * p.monthly_rate)
        before = i.balance
    assert p.total_interest == sum(column(p, "interest"))
    assert p.total_paid == p.principal + p.total_interest


@settings(deadline=None)
@given(plans())
def test_price_payments_are_equal_but_the_last(p: Plan) -> None:
    if p.system is not System.PRICE or p.term == 1:
        return
    *fixed, last = column(p, "payment")
    payment = fixed[0]
    assert set(fixed) == {payment}
    i, n = p.monthly_rate, p.term
    with localcontext(prec=80):
        exact = p.principal * i / (1 - (1 + i) ** -n) if i else Decimal(p.principal) / n
        # each instalment's interest and the payment are off by half a centavo at most each,
        # a centavo a month that grows at the rate until the last: s = Σ (1 + i)^k, k < n
        grown = sum(((1 + i) ** k for k in range(n)), Decimal(0))
    lowered = rounded(exact) - payment  # > 0 only where the rounded PMT would overpay
    assert lowered >= 0
    if lowered:
        assert _overpays(p.principal, i, n, payment + 1)
    assert abs(last - payment) <= (1 + lowered) * grown


def _overpays(principal: int, i: Decimal, n: int, payment: int) -> bool:
    """Whether a fixed ``payment`` takes the balance below zero before the last instalment."""
    balance = principal
    for _ in range(n - 1):
        with localcontext(prec=80):
            balance -= payment - rounded(balance * i)
        if balance < 0:
            return True
    return False


@settings(deadline=None)
@given(plans())
def test_sac_amortizations_are_equal_but_the_last(p: Plan) -> None:
    if p.system is not System.SAC:
        return
    *fixed, last = column(p, "amortization")
    share = p.principal // p.term
    assert set(fixed) <= {share}
    assert share <= last < share + p.term


@settings(deadline=None)
@given(starts, terms)
def test_due_dates_are_a_month_apart(start: date, term: int) -> None:
    dates = due_dates(start, term)
    first = dates[0]
    for k, due in enumerate(dates):
        year, month = divmod(first.year * 12 + first.month - 1 + k, 12)
        length = calendar.monthrange(year, month + 1)[1]
        assert due == date(year, month + 1, min(first.day, length))
        assert 28 * (k + 1) <= (due - start).days <= 31 * (k + 1)


def _present_value(flows: list[tuple[date, int]], start: date, rate: Decimal) -> Decimal:
    """Σ amount / (1 + rate)^(days/365), written out again."""
    with localcontext(prec=80):
        log = (1 + rate).ln()
        return sum(
            (amount * (-log * (due - start).days / 365).exp() for due, amount in flows),
            Decimal(0),
        )


charges = st.integers(0, 10**12)


@settings(deadline=None)
@given(plans(), charges, charges)
def test_the_effective_cost_discounts_the_payments_to_what_was_received(
    p: Plan, fees: int, iof: int
) -> None:
    fees, iof = fees % p.principal, iof % p.principal  # together they may take all of it
    if fees + iof >= p.principal:
        with pytest.raises(InvalidLoan, match="whole principal"):
            cet(p, fees=fees, iof=iof)
        return
    received = p.principal - fees - iof
    rate = cet(p, fees=fees, iof=iof)
    assert rate >= 0  # the borrower pays back at least the principal
    off = max(Decimal("1e-10"), (1 + rate) / 10**19)  # good to 1e-10, or 1e-20 of 1 + rate
    assert _present_value(p.flows(), p.start, rate - off) >= received
    assert _present_value(p.flows(), p.start, rate + off) <= received
    if fees or iof:
        assert rate > cet(p)
    elif p.monthly_rate == 0:
        assert rate == 0


@st.composite
def evenly_spaced(draw: st.DrawFn, principal: st.SearchStrategy[int]) -> tuple[Plan, int]:
    """A plan, and a number of days to space its payments by instead of its due dates."""
    return draw(plans(principal)), draw(st.sampled_from([28, 30, 31, 91, 365]))


def _spaced(p: Plan, days: int) -> list[tuple[date, int]]:
    return [(p.start + timedelta(days * k), i.payment) for k, i in enumerate(p.installments, 1)]


def _contract_rate(p: Plan, days: int) -> Decimal:
    """The plan's monthly rate as a yearly one, were each month ``days`` long."""
    with localcontext(prec=80):
        return (1 + p.monthly_rate) ** (Decimal(365) / days) - 1


@settings(deadline=None)
@given(evenly_spaced(st.integers(10**10, 10**13)))
def test_with_no_fees_and_even_spacing_the_cost_is_the_contract_rate(
    spaced: tuple[Plan, int],
) -> None:
    # the payments discount to the principal at the contract's rate but for each instalment's
    # rounding of its interest (half a centavo at most): on 100 million reais and more that
    # moves the cost by less than 1e-7
    p, days = spaced
    assert abs(annual_cost(p.start, _spaced(p, days), p.principal) - _contract_rate(p, days)) < (
        Decimal("1e-6")
    )


@settings(deadline=None)
@given(evenly_spaced(st.integers(10**4, 10**12)), st.integers(0, 10**12))
def test_fees_above_the_rounding_put_the_cost_above_the_contract_rate(
    spaced: tuple[Plan, int], extra: int
) -> None:
    # at the contract rate the payments are worth the principal give or take the rounding of
    # each instalment's interest, half a centavo at most: fees above that raise the cost
    p, days = spaced
    least = p.term // 2 + 1
    fees = least + extra % max(1, p.principal // 2 - least)
    if fees >= p.principal:
        return
    rate = annual_cost(p.start, _spaced(p, days), p.principal - fees)
    assert rate > _contract_rate(p, days)


@settings(deadline=None)
@given(plans(st.integers(10**10, 10**13)))
def test_on_the_calendar_the_cost_is_the_rate_of_months_of_28_to_31_days(p: Plan) -> None:
    # the k-th payment falls 28·k to 31·k days out (the default first due date): its
    # discount lies between those of months of 28 and of 31 days
    p = simulate(
        p.principal, p.monthly_rate, period=Period.MONTH, term=p.term, system=p.system,
        start=p.start,
    )  # fmt: skip
    rate = cet(p)
    assert (
        _contract_rate(p, 31) - Decimal("1e-6") <= rate <= _contract_rate(p, 28) + Decimal("1e-6")
    )


@settings(deadline=None)
@given(plans())
def test_the_iof_is_its_rates_of_the_principal_at_most(p: Plan) -> None:
    tax = natural_person_iof(p)
    with localcontext(prec=80):
        assert tax.additional == rounded(p.principal * Decimal("0.0038"))
        assert 0 <= tax.daily <= rounded(p.principal * Decimal("0.000082") * 365)
    assert tax.total == tax.additional + tax.daily


# --- bad terms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"principal": 0}, "principal", "above zero, got 0"),
        ({"principal": -100}, "principal", "above zero, got -100"),
        ({"principal": 10.5}, "principal", "whole number of centavos"),
        ({"principal": True}, "principal", "whole number of centavos"),
        ({"principal": MAX_PRINCIPAL + 1}, "principal", "at most"),
        ({"rate": Decimal("-0.01")}, "rate", "may not be negative, got -0.01 (-1 %)"),
        ({"rate": 0.01}, "rate", "a Decimal fraction"),
        ({"rate": Decimal("NaN")}, "rate", "finite"),
        ({"rate": Decimal("Infinity")}, "rate", "finite"),
        ({"rate": Decimal(11)}, "rate", "at most, got 11 (1100 %)"),
        ({"term": 0}, "term", "at least 1 month, got 0"),
        ({"term": -12}, "term", "at least 1 month, got -12"),
        ({"term": 10_000}, "term", "420 months (35 years) at most, got 10000"),
        ({"term": 421}, "term", "at most, got 421"),
        ({"term": 12.0}, "term", "whole number of months"),
        ({"period": "week"}, "period", "month or year, not 'week'"),
        ({"system": "german"}, "system", "price or sac, not 'german'"),
        ({"first_due": START}, "first_due", "after the start (2026-01-15)"),
        ({"first_due": date(2026, 1, 1)}, "first_due", "after the start"),
        ({"first_due": date(2027, 1, 16)}, "first_due", "12 months after the start at most"),
        ({"start": datetime(2026, 1, 15, 12)}, "start", "a date (no time of day)"),
        ({"start": "2026-01-15"}, "start", "a date"),
        ({"start": date(9999, 6, 1)}, "start", "past the year 9999"),
    ],
)
def test_a_bad_term_is_refused_by_name(changes: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidLoan, match=f"^the .*{re.escape(says)}") as refused:
        plan(**changes)
    assert refused.value.field == field
    assert refused.value.extra == {"field": field}
    assert (refused.value.code, refused.value.status) == ("invalid-loan", 422)


@pytest.mark.parametrize(
    ("charges", "field", "says"),
    [
        ({"fees": -1}, "fees", "fees may not be negative"),
        ({"iof": 1.5}, "iof", "iof must be whole centavos"),
        ({"fees": 600_000, "iof": 400_000}, "fees", "take the whole principal of 10000.00"),
    ],
)
def test_bad_charges_are_refused_by_name(charges: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidLoan, match=re.escape(says)) as refused:
        cet(plan(), **charges)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("flows", "received", "says"),
    [
        ([], 100, "no payment above zero"),
        ([(date(2026, 2, 1), 0)], 100, "no payment above zero"),
        ([(START, 100)], 100, "not after the start"),
        ([(date(2026, 2, 1), -5)], 100, "not below zero"),
        ([(date(2026, 2, 1), 100)], 0, "above zero, not 0"),
    ],
)
def test_bad_flows_are_refused(flows: list[tuple[date, int]], received: int, says: str) -> None:
    with pytest.raises(InvalidLoan, match=says):
        annual_cost(START, flows, received)
