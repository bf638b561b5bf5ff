"""``paycore banking loans simulate``: a loan's plan, its effective cost and its IOF, for the
operator, as a table or as one JSON object (``--json``). Amounts are reais with at most two
decimals ("10000.00"), the rate a percent ("1.5" is 1.5 %). A bad value is one red line naming
the option, and exit status 2."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from paycore.banking.loans import schedule
from paycore.banking.loans.schedule import InvalidLoan, Period, System
from paycore.banking.loans.simulation import (
    COST_PLACES,
    RATE_PLACES,
    Simulation,
    costed,
    document,
    percent,
    reais,
)
from paycore.platform.cli import fail

USAGE = 2
"""The exit status of a bad value."""
OPTIONS = {"first_due": "first-due", "received": "fees"}
"""The option that sets each of the schedule's fields, where its name is not the field's."""

_REAIS = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?")
_TOO_PRECISE = re.compile(r"[0-9]*\.[0-9]{3,}")
_PERCENT = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def simulate(
    principal: Annotated[str, typer.Option(help="The amount lent, in reais, e.g. 10000.00.")],
    rate: Annotated[
        str,
        typer.Option(help="The interest rate in percent per --period: 1.5 means 1.5 %."),
    ],
    period: Annotated[
        Period,
        typer.Option(help="What the rate is per; a yearly rate is (1 + a)^(1/12) - 1 a month."),
    ],
    term: Annotated[int, typer.Option(help="How many monthly instalments, 1 to 420.")],
    system: Annotated[
        System, typer.Option(help="price: a fixed payment; sac: a constant amortization.")
    ],
    first_due: Annotated[
        str | None,
        typer.Option(help="The first due date, YYYY-MM-DD.", show_default="a month after --start"),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(help="The day the loan is paid out, YYYY-MM-DD.", show_default="today"),
    ] = None,
    fees: Annotated[
        str, typer.Option(help="Fees kept out of the principal paid out, in reais.")
    ] = "0",
    iof: Annotated[
        str | None, typer.Option(help="IOF kept out of the principal paid out, in reais.")
    ] = None,
    iof_auto: Annotated[
        bool,
        typer.Option("--iof-auto", help="Compute the IOF of a natural person instead of --iof."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, not a table.")] = False,
) -> None:
    """A loan's instalments (due date, payment, interest, amortization, balance), its total
    interest and its effective yearly cost (CET: the rate at which the payments are worth
    what the borrower receives, the principal less fees and IOF)."""
    if iof is not None and iof_auto:
        raise fail("give --iof or --iof-auto, not both", USAGE)
    lent = _reais(principal, "--principal")
    charged = _reais(fees, "--fees")
    paid_out = _day(start, "--start") if start is not None else date.today()
    first = _day(first_due, "--first-due") if first_due is not None else None
    try:
        plan = schedule.simulate(
            lent,
            _percent(rate),
            period=period,
            term=term,
            system=system,
            start=paid_out,
            first_due=first,
        )
        tax = None if iof_auto else _reais(iof or "0", "--iof")
        simulation = costed(plan, fees=charged, iof=tax)
    except InvalidLoan as exc:
        raise fail(f"--{OPTIONS.get(exc.field, exc.field)}: {exc.detail}", USAGE) from None
    if as_json:
        print(json.dumps(document(simulation), indent=2))
    else:
        _show(simulation)


def register(banking: typer.Typer) -> None:
    """``paycore banking loans …``."""
    loans = typer.Typer(help="Loans: repayment plans and their cost.", no_args_is_help=True)
    loans.command("simulate")(simulate)
    banking.add_typer(loans, name="loans")


# --- reading the options -------------------------------------------------------------------


def _reais(text: str, option: str) -> int:
    """Reais with at most two decimals as centavos; exit status 2 otherwise."""
    text = text.strip()
    if text.startswith("-"):
        raise fail(f"{option}: {text} is negative; give reais of 0 or more", USAGE)
    if _TOO_PRECISE.fullmatch(text):
        places = len(text.partition(".")[2])
        raise fail(
            f"{option}: {text} has {places} decimals; reais have 2 at most (centavos)", USAGE
        )
    if not _REAIS.fullmatch(text):
        raise fail(f"{option}: {text!r} is not an amount of reais; write it like 10000.00", USAGE)
    return int(Decimal(text).scaleb(2))


def _percent(text: str) -> Decimal:
    """A percent as the fraction the schedule takes ("1.5": 0.015); negative ones reach the
    schedule, which says why it refuses them."""
    text = text.strip()
    magnitude = text.removeprefix("-")
    if not _PERCENT.fullmatch(magnitude):
        hint = " (a decimal point, not a comma)" if "," in text else ""
        raise fail(f"--rate: {text!r} is not a percent{hint}; write it like 1.5", USAGE)
    return Decimal(text).scaleb(-2)


def _day(text: str, option: str) -> date:
    try:
        if _DAY.fullmatch(text.strip()):
            return date.fromisoformat(text.strip())
    except ValueError:
        pass
    raise fail(f"{option}: {text!r} is not a date; write it as YYYY-MM-DD", USAGE)


# --- writing the plan ----------------------------------------------------------------------


def _show(simulation: Simulation) -> None:
    plan = simulation.plan
    out = Console(highlight=False)
    name = "Price" if plan.system is System.PRICE else "SAC"
    rate = percent(plan.monthly_rate, RATE_PLACES)
    table = Table(title=f"{name}: {reais(plan.principal)} at {rate} % a month", show_footer=True)
    table.add_column("#", "total", justify="right")
    table.add_column("due date")
    for column, total in (
        ("payment", plan.total_paid),
        ("interest", plan.total_interest),
        ("amortization", plan.principal),
    ):
        table.add_column(column, reais(total), justify="right")
    table.add_column("balance", justify="right")
    for i in plan.installments:
        table.add_row(
            str(i.number),
            i.due_date.isoformat(),
            reais(i.payment),
            reais(i.interest),
            reais(i.amortization),
            reais(i.balance),
        )
    out.print(table)
    out.print(
        f"paid out on {plan.start.isoformat()}: {reais(plan.principal)} less fees "
        f"{reais(simulation.fees)} and IOF {reais(simulation.iof)} = "
        f"{reais(simulation.received)} received",
        soft_wrap=True,
    )
    out.print(f"CET {percent(simulation.cost, COST_PLACES)} % a year", soft_wrap=True)
