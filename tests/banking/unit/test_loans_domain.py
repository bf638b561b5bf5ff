"""The loans' rules with no database: the decision (each rule, its bounds inclusive, the first
one broken named), the ledger transfers of a loan (ids derived from the loan's, linked
chains without transfers of nothing), an early payoff's charge, an instalment's status as of a
day, and the settings' bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from paycore.banking.ledger.domain import Status
from paycore.banking.loans.domain import (
    Applied,
    BankAccounts,
    InstallmentStatus,
    Policy,
    Rejection,
    chain,
    decide,
    disbursement,
    installment_payment,
    payoff,
    shown_status,
)
from paycore.banking.loans.schedule import Installment, Period, System, simulate
from paycore.banking.settings import BankingSettings

POLICY = Policy(
    max_income_share=Decimal("0.30"),
    min_principal=10_000,
    max_principal=5_000_000,
    min_term=3,
    max_term=60,
    max_open=2,
)
BANK = BankAccounts(loans="L", interest="I", iof="T")
START = date(2026, 1, 15)


def applied(principal: int = 100_000, term: int = 12, **changes: object) -> Applied:
    plan = simulate(
        principal, Decimal("0.0199"), period=Period.MONTH, term=term, system=System.SAC, start=START
    )
    found = Applied(principal, term, 1_000_000, Status.OPEN, 0, plan)
    return replace(found, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "rejection"),
    [
        ({}, None),
        ({"principal": 10_000}, None),  # the bounds are inclusive
        ({"principal": 5_000_000, "term": 60}, None),
        ({"term": 3}, None),
        ({"open_loans": 1}, None),
        ({"account_status": None}, Rejection.ACCOUNT_NOT_FOUND),
        ({"account_status": Status.CLOSED}, Rejection.ACCOUNT_CLOSED),
        ({"account_status": Status.BLOCKED}, Rejection.ACCOUNT_BLOCKED),
        ({"principal": 9_999}, Rejection.PRINCIPAL_OUT_OF_BOUNDS),
        ({"principal": 5_000_001}, Rejection.PRINCIPAL_OUT_OF_BOUNDS),
        ({"term": 2}, Rejection.TERM_OUT_OF_BOUNDS),
        ({"term": 61}, Rejection.TERM_OUT_OF_BOUNDS),
        ({"open_loans": 2}, Rejection.TOO_MANY_OPEN_LOANS),
        ({"monthly_income": 1_000}, Rejection.INCOME_TOO_LOW),
        # every rule broken: the first one is named
        (
            {"account_status": Status.BLOCKED, "principal": 1, "open_loans": 9},
            Rejection.ACCOUNT_BLOCKED,
        ),
    ],
)
def test_the_decision_names_the_first_rule_broken(
    changes: dict[str, object], rejection: Rejection | None
) -> None:
    terms = {k: changes.pop(k) for k in ("principal", "term") if k in changes}
    decision = decide(POLICY, applied(**terms, **changes))  # type: ignore[arg-type]
    assert decision.rejection is rejection
    assert decision.approved is (rejection is None)
    assert bool(decision.detail) is (rejection is not None)


def test_the_income_rule_takes_the_largest_instalment() -> None:
    sac = applied()  # 1,000.00 in 12: the first instalment is the largest, 83.33 + 19.90
    assert max(i.payment for i in sac.plan.installments) == 10_323
    enough = decide(POLICY, replace(sac, monthly_income=34_410))  # 30 % is 103.23
    short = decide(POLICY, replace(sac, monthly_income=34_409))
    assert (enough.rejection, short.rejection) == (None, Rejection.INCOME_TOO_LOW)
    assert short.detail == (
        "the largest instalment, 103.23, is above 30 % of the declared monthly income of 344.09"
    )


def test_a_disbursement_keeps_the_iof_out_in_one_linked_chain() -> None:
    [paid_out, tax] = disbursement("abc", "acct", BANK, 100_000, 883)
    assert (paid_out.id, paid_out.debit_account_id, paid_out.credit_account_id) == (
        "loan-abc",
        "L",
        "acct",
    )
    assert (paid_out.amount, paid_out.linked, paid_out.code) == (99_117, True, "loan")
    assert (tax.id, tax.credit_account_id, tax.amount, tax.linked) == (
        "loan-abc-iof",
        "T",
        883,
        False,
    )
    [alone] = disbursement("abc", "acct", BANK, 100, 0)  # no IOF: no transfer of nothing
    assert (alone.amount, alone.linked) == (100, False)


def test_an_instalment_is_paid_as_principal_and_interest_under_ids_of_its_own() -> None:
    installment = Installment(7, START, 34_669, 1_990, 32_679, 67_321)
    principal, interest = installment_payment("abc", "acct", BANK, installment)
    assert (principal.id, principal.credit_account_id, principal.amount) == (
        "loan-abc-7-principal",
        "L",
        32_679,
    )
    assert (interest.id, interest.credit_account_id, interest.amount) == (
        "loan-abc-7-interest",
        "I",
        1_990,
    )
    assert (principal.linked, interest.linked) == (True, False)
    assert {principal.debit_account_id, interest.debit_account_id} == {"acct"}
    free = Installment(1, START, 500, 0, 500, 0)  # a rate of zero: no interest transfer
    assert [t.id for t in installment_payment("abc", "acct", BANK, free)] == [
        "loan-abc-1-principal"
    ]
    assert chain(installment_payment("abc", "acct", BANK, Installment(1, START, 0, 0, 0, 1))) == []


def test_a_payoff_charges_what_is_due_in_full_and_the_rest_without_interest() -> None:
    unpaid = [
        Installment(2, date(2026, 3, 15), 34_669, 1_340, 33_329, 33_992),
        Installment(3, date(2026, 4, 15), 34_668, 676, 33_992, 0),
    ]
    early = payoff(unpaid, date(2026, 3, 14))
    assert (early.principal, early.interest, early.due, early.prepaid) == (67_321, 0, (), (2, 3))
    on_the_day = payoff(unpaid, date(2026, 3, 15))  # due today: charged in full
    assert (on_the_day.principal, on_the_day.interest, on_the_day.due) == (67_321, 1_340, (2,))
    assert on_the_day.total == 68_661
    late = payoff(unpaid, date(2026, 5, 1))
    assert (late.total, late.prepaid) == (67_321 + 1_340 + 676, ())


def test_an_unpaid_instalment_past_its_due_date_shows_overdue() -> None:
    day = date(2026, 3, 15)
    assert shown_status(InstallmentStatus.DUE, day, day) is InstallmentStatus.DUE
    assert shown_status(InstallmentStatus.DUE, day, date(2026, 3, 16)) is InstallmentStatus.OVERDUE
    assert shown_status(InstallmentStatus.PAID, day, date(2027, 1, 1)) is InstallmentStatus.PAID


@pytest.mark.parametrize(
    ("setting", "value", "said"),
    [
        ("LOANS_MIN_PRINCIPAL_CENTS", "6000000", "min_principal_cents is above"),
        ("LOANS_MIN_TERM", "61", "loans_min_term is above"),
        ("LOANS_MONTHLY_RATE", "-0.01", "greater than or equal to 0"),
        ("LOANS_MAX_INCOME_SHARE", "0", "greater than 0"),
    ],
)
def test_settings_out_of_their_bounds_are_refused(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str, said: str
) -> None:
    monkeypatch.setenv(f"PAYCORE_BANKING_{setting}", value)
    with pytest.raises(ValidationError, match=said):
        BankingSettings()
