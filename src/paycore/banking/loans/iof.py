"""The IOF (imposto sobre operações financeiras) a natural person pays on a loan, from its plan:
a fixed rate on the principal, plus a daily rate on each instalment's amortization for the days
from the loan's start to that instalment's due date, counting 365 days at most. The bank keeps
it out of the principal paid out (it is not financed here). Standard library only.

The rates are those of Decreto nº 6.306/2007 (the IOF regulation), art. 7º: I, b, 3 (0.0082 %
a day on a natural person's credit, charged for 365 days at most) and § 15 (the additional
0.38 %, whatever the term, since Decreto nº 6.339/2008). Decreto nº 12.466/2025 raised the
rates of companies' credit and left these unchanged (as public summaries of it, May 2025, say).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from paycore.banking.loans.schedule import PRECISION, Plan, centavos

ADDITIONAL_RATE = Decimal("0.0038")
"""0.38 % of the principal, once (Decreto 6.306/2007, art. 7º § 15)."""
DAILY_RATE = Decimal("0.000082")
"""0.0082 % a day of each amortization, for a natural person (art. 7º, I, b, 3)."""
MAX_DAYS = 365
"""The daily rate counts this many days at most: 2.993 % in all."""


@dataclass(frozen=True, slots=True)
class Iof:
    """The IOF of a loan, in centavos: the fixed part and the daily part."""

    additional: int
    daily: int

    @property
    def total(self) -> int:
        return self.additional + self.daily


def natural_person_iof(plan: Plan) -> Iof:
    """The IOF a natural person pays on ``plan``: ``ADDITIONAL_RATE`` of the principal, and
    ``DAILY_RATE`` of each amortization for the days from the start to its due date (at most
    ``MAX_DAYS``); each part rounded to the centavo (``schedule.ROUNDING``)."""
    with localcontext(prec=PRECISION):
        additional = plan.principal * ADDITIONAL_RATE
        daily = sum(
            (
                i.amortization * DAILY_RATE * min((i.due_date - plan.start).days, MAX_DAYS)
                for i in plan.installments
            ),
            Decimal(0),
        )
        return Iof(centavos(additional), centavos(daily))
