"""``paycore banking loans simulate``: the plan as JSON (reais as decimal strings, the CET a
percent with 4 decimals) or as a table, and every bad value one line naming its option, exit
status 2."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from unit_fixtures import Cli

OPTIONS = {"--principal": "10000.00", "--rate": "1", "--period": "month", "--term": "12"}
LOAN = tuple(part for option in OPTIONS.items() for part in option)


def simulate(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli.run("banking", "loans", "simulate", *args, "--json")
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_price_plan_as_json(cli: Cli) -> None:
    plan = simulate(cli, *LOAN, "--system", "price", "--start", "2026-01-15")
    assert plan["installments"][0] == {
        "number": 1,
        "due_date": "2026-02-15",
        "payment": "888.49",
        "interest": "100.00",
        "amortization": "788.49",
        "balance": "9211.51",
    }
    assert [i["payment"] for i in plan["installments"]] == ["888.49"] * 11 + ["888.47"]
    assert plan["installments"][-1]["due_date"] == "2027-01-15"
    assert plan["installments"][-1]["balance"] == "0.00"
    assert (plan["total_interest"], plan["total_paid"]) == ("661.86", "10661.86")
    assert (plan["principal"], plan["received"], plan["monthly_rate"]) == (
        "10000.00",
        "10000.00",
        "1.000000",
    )


def test_a_sac_plan_as_json(cli: Cli) -> None:
    plan = simulate(cli, *LOAN, "--system", "sac", "--start", "2026-01-15")
    amortizations = [i["amortization"] for i in plan["installments"]]
    assert amortizations == ["833.33"] * 11 + ["833.37"]
    assert plan["total_interest"] == "650.00"


def test_the_cet_is_a_percent_with_4_decimals(cli: Cli) -> None:
    # one instalment of 10100.00 31 days out: (10100/10000)^(365/31) - 1 = 12.42960…%, and
    # on 9900.00 received (fees of 100.00) (10100/9900)^(365/31) - 1 = 26.55309…%
    one = (*LOAN[:-1], "1", "--system", "price", "--start", "2026-01-01")
    assert simulate(cli, *one)["cet_annual"] == "12.4296"
    with_fees = simulate(cli, *one, "--fees", "100.00")
    assert (with_fees["fees"], with_fees["received"]) == ("100.00", "9900.00")
    assert with_fees["cet_annual"] == "26.5531"
    # 0.38% of 10000.00 and 0.0082% a day of it for 31 days: 38.00 + 25.42
    auto = simulate(cli, *one, "--iof-auto")
    assert (auto["iof"], auto["received"]) == ("63.42", "9936.58")
    given = simulate(cli, *one, "--iof", "63.42")
    assert given["cet_annual"] == auto["cet_annual"] != "12.4296"


def test_a_year_rate_is_compounded_and_due_dates_keep_the_month_end(cli: Cli) -> None:
    yearly = ("--principal", "10000.00", "--rate", "12.6825", "--period", "year")
    dates = ("--start", "2026-01-01", "--first-due", "2026-01-31")
    plan = simulate(cli, *yearly, "--term", "3", "--system", "price", *dates)
    assert [i["due_date"] for i in plan["installments"]] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
    ]
    assert plan["installments"][0]["interest"] == "100.00"  # 1% a month, not 12.6825/12


def test_the_start_is_today_by_default(cli: Cli) -> None:
    before = str(date.today())
    plan = simulate(cli, *LOAN, "--system", "sac")
    assert before <= plan["start"] <= str(date.today())


def test_the_plan_as_a_table(cli: Cli) -> None:
    options = ("--system", "price", "--start", "2026-01-15", "--iof-auto")
    result = cli.run("banking", "loans", "simulate", *LOAN, *options)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("888.49") == 11
    for shown in ("888.47", "9211.51", "661.86", "10661.86", "IOF 202.43", "CET ", "% a year"):
        assert shown in result.stdout


def test_the_help_says_the_rate_is_a_percent(cli: Cli) -> None:
    result = cli.run("banking", "loans", "simulate", "--help")
    assert result.exit_code == 0
    assert "1.5 means 1.5 %" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"--principal": "10000.001"}, "--principal: 10000.001 has 3 decimals"),
        ({"--principal": "-5"}, "--principal: -5 is negative"),
        ({"--principal": "0"}, "--principal: the principal must be above zero"),
        ({"--principal": "1e4"}, "--principal: '1e4' is not an amount of reais"),
        ({"--rate": "-1"}, "--rate: the rate may not be negative, got -0.01 (-1 %)"),
        ({"--rate": "1,5"}, "--rate: '1,5' is not a percent (a decimal point, not a comma)"),
        ({"--term": "0"}, "--term: the term must be at least 1 month, got 0"),
        ({"--term": "10000"}, "--term: the term may be 420 months (35 years) at most"),
        ({"--first-due": "2026-02-30"}, "--first-due: '2026-02-30' is not a date"),
        ({"--first-due": "2026-01-10"}, "--first-due: the first due date must be after the start"),
        ({"--start": "15/01/2026"}, "--start: '15/01/2026' is not a date"),
        ({"--fees": "10000.00"}, "--fees: fees of 10000.00 and IOF of 0.00 take the whole"),
        ({"--fees": "1.999"}, "--fees: 1.999 has 3 decimals"),
        ({"--iof": "-1"}, "--iof: -1 is negative"),
        ({"--iof": "1", "--iof-auto": ""}, "give --iof or --iof-auto, not both"),
    ],
)
def test_a_bad_value_is_named_with_exit_status_2(
    cli: Cli, changes: dict[str, str], says: str
) -> None:
    options = {**OPTIONS, "--system": "price", "--start": "2026-01-15", **changes}
    args = [part for name, value in options.items() for part in (name, value) if part]
    result = cli.run("banking", "loans", "simulate", *args)
    assert result.exit_code == 2
    assert says in " ".join(result.stderr.split())
    assert result.stdout == ""
