"""A loan's simulation as one document: its plan, its totals, what the borrower receives and
the effective yearly cost. ``paycore banking loans simulate --json`` prints it and
``POST /banking/loans/simulations`` answers it: one builder for both. Amounts are reais as
decimal strings ("888.49"), rates percent strings ("1.990000"). Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from paycore.banking.loans.cost import cet
from paycore.banking.loans.iof import natural_person_iof
from paycore.banking.loans.schedule import PRECISION, Plan

RATE_PLACES = 6
"""Decimals of the monthly rate shown, as a percent."""
COST_PLACES = 4
"""Decimals of the CET shown, as a percent."""


@dataclass(frozen=True, slots=True)
class Simulation:
    """A plan with what is kept out of the principal paid out (``fees``, ``iof``, centavos) and
    its effective yearly cost (a fraction)."""

    plan: Plan
    fees: int
    iof: int
    cost: Decimal

    @property
    def received(self) -> int:
        """What the borrower receives: the principal less fees and IOF."""
        return self.plan.principal - self.fees - self.iof


def costed(plan: Plan, *, fees: int = 0, iof: int | None = None) -> Simulation:
    """``plan`` with its fees, its IOF (``None``: a natural person's, computed) and its CET;
    ``InvalidLoan`` if they would take the whole principal."""
    tax = natural_person_iof(plan).total if iof is None else iof
    return Simulation(plan, fees, tax, cet(plan, fees=fees, iof=tax))


def document(simulation: Simulation) -> dict[str, Any]:
    """The simulation as one JSON object (see the module doc)."""
    plan = simulation.plan
    return {
        "system": plan.system.value,
        "principal": reais(plan.principal),
        "monthly_rate": percent(plan.monthly_rate, RATE_PLACES),
        "term": plan.term,
        "start": plan.start.isoformat(),
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date.isoformat(),
                "payment": reais(i.payment),
                "interest": reais(i.interest),
                "amortization": reais(i.amortization),
                "balance": reais(i.balance),
            }
            for i in plan.installments
        ],
        "total_interest": reais(plan.total_interest),
        "total_paid": reais(plan.total_paid),
        "fees": reais(simulation.fees),
        "iof": reais(simulation.iof),
        "received": reais(simulation.received),
        "cet_annual": percent(simulation.cost, COST_PLACES),
    }


def reais(centavos: int) -> str:
    """Centavos (0 or more) as reais with two decimals: ``88849`` is ``"888.49"``."""
    return f"{centavos // 100}.{centavos % 100:02d}"


def percent(fraction: Decimal, places: int) -> str:
    """A fraction as a percent with ``places`` decimals, rounded half to even."""
    with localcontext(prec=PRECISION, rounding=ROUND_HALF_EVEN):
        return format(fraction * 100, f".{places}f")
