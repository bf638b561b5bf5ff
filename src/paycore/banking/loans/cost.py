"""A loan's effective cost (the CET, custo efetivo total): the yearly rate at which the
borrower's payments, each discounted from its due date back to the day the loan was paid out,
are worth what the borrower actually received (the principal less fees and IOF):

    Σ payment_j / (1 + CET)^((d_j - d_0) / 365) = received

with calendar days and 365 to a year, as the Banco Central defines it (Resolução CMN
3.517/2007). Solved by Newton's method in x = ln(1 + CET), where the left side is a decreasing
convex function: from any start the steps close in from one side and never overshoot, so no
bracket is needed. It stops once a step is below ``STEP``: the rate is good to 1e-10 (to 1e-10
of 1 + CET, for the absurd rates above 10^10). Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal, localcontext

from paycore.banking.ledger.domain import units
from paycore.banking.loans.schedule import PRECISION, InvalidLoan, Plan

DAYS_A_YEAR = 365
STEP = Decimal("1e-20")
"""The solver stops after a step of ln(1 + r) smaller than this: r is then off by less than
(1 + r)·1e-20 (Newton's error falls quadratically, so the last step bounds it)."""
MAX_STEPS = 200
"""Newton's steps before the solver gives up (it needs a handful, some tens at the extremes)."""
SIGNIFICANT = 30
"""Significant digits of the rate returned."""


def cet(plan: Plan, *, fees: int = 0, iof: int = 0) -> Decimal:
    """The plan's effective yearly cost, as a fraction, when ``fees`` and ``iof`` (centavos)
    are kept out of the principal paid out."""
    fees = _checked_charge(fees, "fees")
    iof = _checked_charge(iof, "iof")
    received = plan.principal - fees - iof
    if received <= 0:
        raise InvalidLoan(
            "fees",
            f"fees of {units(fees)} and IOF of {units(iof)} take the whole principal of "
            f"{units(plan.principal)}: the borrower would receive nothing",
        )
    return annual_cost(plan.start, plan.flows(), received)


def annual_cost(start: date, flows: Sequence[tuple[date, int]], received: int) -> Decimal:
    """The yearly rate r at which ``flows`` (each a due date and an amount in centavos) are
    worth ``received`` centavos on ``start``: Σ amount / (1 + r)^(days / 365) = received."""
    points = _checked_flows(start, flows)
    if isinstance(received, bool) or not isinstance(received, int) or received <= 0:
        raise InvalidLoan(
            "received", f"the amount received is whole centavos above zero, not {received!r}"
        )
    with localcontext(prec=PRECISION):
        x = Decimal(0)  # ln(1 + r)
        for _ in range(MAX_STEPS):
            value, slope = _present_value(points, x)
            step = (value - received) / slope
            x -= step
            if abs(step) < STEP:
                rate = x.exp() - 1
                with localcontext(prec=SIGNIFICANT):
                    return +rate
    raise ArithmeticError(f"the effective cost did not settle in {MAX_STEPS} steps")


def _present_value(points: Sequence[tuple[int, int]], x: Decimal) -> tuple[Decimal, Decimal]:
    """Σ amount · e^(-x·days/365) and its derivative in x."""
    daily = (-x / DAYS_A_YEAR).exp()
    value = slope = Decimal(0)
    for days, amount in points:
        discounted = amount * daily**days
        value += discounted
        slope -= discounted * days / DAYS_A_YEAR
    return value, slope


def _checked_flows(start: date, flows: Sequence[tuple[date, int]]) -> list[tuple[int, int]]:
    """Each flow as (days after ``start``, amount): every one after the start, none negative,
    some above zero."""
    points = []
    for due, amount in flows:
        if due <= start:
            raise InvalidLoan("flows", f"a payment is due on {due}, not after the start {start}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise InvalidLoan("flows", f"a payment is whole centavos, not below zero: {amount!r}")
        points.append(((due - start).days, amount))
    if not any(amount for _, amount in points):
        raise InvalidLoan("flows", "there is no payment above zero to discount")
    return points


def _checked_charge(amount: object, field: str) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidLoan(field, f"{field} must be whole centavos, not {amount!r}")
    if amount < 0:
        raise InvalidLoan(field, f"{field} may not be negative, got {amount} centavos")
    return amount
