"""Auto-insurance quotes with no database: the worked examples of docs/banking-insurance.md
checked by hand, the seed's rule (base × 1.07), components adding up to the total exactly,
configurable rates (and the settings they come from), and every input refused by name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from paycore import contexts
from paycore.banking.domain import InvalidCpf
from paycore.banking.insurance.quote import (
    MAX_INSURED_AMOUNT,
    Coverage,
    InvalidDeductible,
    InvalidInsuredAmount,
    InvalidPlate,
    InvalidRates,
    InvalidText,
    InvalidVehicleYear,
    NoCoverage,
    PaymentMethod,
    Person,
    Quote,
    QuoteRequest,
    Rates,
    UnknownCoverage,
    UnknownPaymentMethod,
    Vehicle,
    coverages_of,
    payment_method_of,
    plate_of,
    quote,
)
from paycore.banking.settings import BankingSettings

NOW = datetime(2027, 1, 4, 15, 0, tzinfo=UTC)
ANA = Person("Ana Souza", "529.982.247-25")
ARGO = Vehicle("Fiat", "Argo", 2023, "abc-1234")
ALL = frozenset(Coverage)


def ask(
    insured_amount: int = 8_000_000,
    deductible: int = 400_000,
    coverages: frozenset[Coverage] = frozenset({Coverage.COLLISION}),
    **more: Any,
) -> QuoteRequest:
    fields: dict[str, Any] = {
        "insured": ANA,
        "vehicle": ARGO,
        "insured_amount": insured_amount,
        "deductible": deductible,
        "coverages": coverages,
        "payment_method": PaymentMethod.PIX,
    }
    return QuoteRequest(**(fields | more))


def parts(q: Quote) -> dict[str, int]:
    return {
        "base": q.base,
        "deductible_discount": q.deductible_discount,
        "net_base": q.net_base,
        "tax": q.tax,
        "interest": q.interest,
        "total": q.total,
    }


def half_up(value: Decimal) -> int:
    """Rounding to the centavo as written apart from the module: Decimal's ROUND_HALF_UP."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- worked examples, by hand ----------------------------------------------------------------


def test_the_worked_example_of_the_docs() -> None:
    """R$ 80,000.00 insured, R$ 4,000.00 deductible, collision + theft + third party."""
    covered = coverages_of(["collision", "theft", "third_party"])
    q = quote(ask(8_000_000, 400_000, covered), Rates(), NOW)
    assert dict(q.premiums) == {
        Coverage.COLLISION: 280_000,  # 8,000,000 × 0.035
        Coverage.THEFT: 144_000,  # 8,000,000 × 0.018
        Coverage.THIRD_PARTY: 96_000,  # 8,000,000 × 0.012
    }
    assert parts(q) == {
        "base": 520_000,
        "deductible_discount": 26_000,  # 400,000 / 8,000,000 = 5 % of the base
        "net_base": 494_000,
        "tax": 24_700,  # 5 %
        "interest": 9_880,  # 2 %
        "total": 528_580,  # 494,000 × 1.07
    }
    assert list(q.premiums) == [Coverage.COLLISION, Coverage.THEFT, Coverage.THIRD_PARTY]
    assert q.quoted_at == NOW
    assert q.valid_until == datetime(2027, 1, 11, 15, 0, tzinfo=UTC)  # 7 days


def test_the_rounding_example_of_the_docs() -> None:
    """R$ 45,678.91 insured, R$ 2,500.00 deductible, collision + glass: each component rounded
    once, half up; interest takes what rounding the total once leaves."""
    covered = coverages_of(["glass", "collision"])
    q = quote(ask(4_567_891, 250_000, covered), Rates(), NOW)
    assert dict(q.premiums) == {
        Coverage.COLLISION: 159_876,  # 159,876.185
        Coverage.GLASS: 27_407,  # 27,407.346
    }
    assert parts(q) == {
        "base": 187_283,
        "deductible_discount": 10_250,  # 187,283 × 250,000 / 4,567,891 = 10,249.97…
        "net_base": 177_033,
        "tax": 8_852,  # 8,851.65
        "interest": 3_540,  # 189,425 − 177,033 − 8,852 (177,033 × 0.02 is 3,540.66)
        "total": 189_425,  # 177,033 × 1.07 = 189,425.31
    }


def test_half_a_centavo_rounds_up() -> None:
    rates = Rates.of(
        {c.value: "0.0025" for c in Coverage},
        deductible_discount_cap="0",
        tax="0.05",
        interest="0",
        validity_days=7,
    )
    q = quote(ask(1_000, 0, coverages_of(["collision", "theft"])), rates, NOW)
    assert dict(q.premiums) == {Coverage.COLLISION: 3, Coverage.THEFT: 3}  # 2.5: up, not to 2
    assert (q.net_base, q.tax, q.total) == (6, 0, 6)  # 0.30 of tax rounds down
    q = quote(ask(4_000, 0, coverages_of(["fire"])), rates, NOW)
    assert (q.net_base, q.tax, q.total) == (10, 1, 11)  # 0.5 of tax rounds up


def test_the_discount_is_the_deductible_share_up_to_its_cap() -> None:
    base = 280_000  # collision on R$ 80,000.00
    at_cap = quote(ask(8_000_000, 2_000_000), Rates(), NOW)  # 25 %: exactly the cap
    beyond = quote(ask(8_000_000, 7_999_999), Rates(), NOW)  # ~100 %: capped
    none = quote(ask(8_000_000, 0), Rates(), NOW)
    assert (at_cap.base, at_cap.deductible_discount) == (base, 70_000)
    assert beyond.deductible_discount == 70_000
    assert none.deductible_discount == 0
    assert none.total == half_up(Decimal(base) * Decimal("1.07")) == 299_600


# --- the seed's rule and exact sums, for any request and rates -------------------------------


def rate(top: str = "0.999999") -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=0, max_value=Decimal(top), places=6)


rates_st = st.builds(
    Rates,
    coverage=st.fixed_dictionaries({c: rate() for c in Coverage}),
    deductible_discount_cap=rate(),
    tax=rate(),
    interest=rate(),
    validity_days=st.integers(1, 365),
)


@st.composite
def requests(draw: st.DrawFn) -> QuoteRequest:
    amount = draw(st.integers(1, MAX_INSURED_AMOUNT))
    deductible = draw(st.integers(0, amount - 1))
    covered = draw(st.frozensets(st.sampled_from(Coverage), min_size=1))
    return ask(amount, deductible, covered, payment_method=draw(st.sampled_from(PaymentMethod)))


@given(requests())
def test_the_seeds_rule_with_the_default_rates(request: QuoteRequest) -> None:
    q = quote(request, Rates(), NOW)
    assert q.total == half_up(Decimal(q.net_base) * Decimal("1.07"))


@given(requests(), rates_st)
def test_the_components_add_up_to_the_total_exactly(request: QuoteRequest, rates: Rates) -> None:
    q = quote(request, rates, NOW)
    amount = request.insured_amount
    assert set(q.premiums) == request.coverages
    for coverage, premium in q.premiums.items():
        assert premium == half_up(amount * rates.coverage[coverage])
    assert q.base == sum(q.premiums.values())
    assert q.net_base == q.base - q.deductible_discount
    assert q.total == q.net_base + q.tax + q.interest
    assert q.total == half_up(q.net_base * (1 + rates.tax + rates.interest))
    assert q.tax == half_up(q.net_base * rates.tax)
    share = min(Fraction(request.deductible, amount), Fraction(rates.deductible_discount_cap))
    assert abs(q.deductible_discount - q.base * share) <= Fraction(1, 2)
    assert abs(q.interest - q.net_base * Fraction(rates.interest)) <= 1
    assert min(q.deductible_discount, q.net_base, q.tax, q.interest) >= 0
    assert q.total >= 0


# --- rates, configurable ----------------------------------------------------------------------


def test_rates_change_the_quote() -> None:
    dearer = Rates.of(
        {"collision": "0.05", "theft": 0, "fire": 0, "third_party": 0, "glass": 0, "roadside": 0},
        deductible_discount_cap=Decimal("0.1"),
        tax="0.1",
        interest="0",
        validity_days=30,
    )
    q = quote(ask(8_000_000, 1_600_000), dearer, NOW)  # deductible 20 %, capped at 10 %
    assert parts(q) == {
        "base": 400_000,
        "deductible_discount": 40_000,
        "net_base": 360_000,
        "tax": 36_000,
        "interest": 0,
        "total": 396_000,
    }
    assert q.valid_until == NOW + timedelta(days=30)


def test_the_default_settings_make_the_default_rates() -> None:
    settings = BankingSettings(_env_file=None)  # type: ignore[call-arg]
    assert rates_of(settings) == Rates()


def test_rates_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYCORE_BANKING_INSURANCE_RATE_COLLISION", "0.04")
    monkeypatch.setenv("PAYCORE_BANKING_INSURANCE_TAX", "0.0738")
    monkeypatch.setenv("PAYCORE_BANKING_INSURANCE_INTEREST", "0")
    monkeypatch.setenv("PAYCORE_BANKING_INSURANCE_DEDUCTIBLE_DISCOUNT_CAP", "0")
    monkeypatch.setenv("PAYCORE_BANKING_INSURANCE_VALIDITY_DAYS", "30")
    rates = rates_of(BankingSettings(_env_file=None))  # type: ignore[call-arg]
    assert rates.coverage[Coverage.COLLISION] == Decimal("0.04")
    assert rates.coverage[Coverage.THEFT] == Decimal("0.018")
    q = quote(ask(1_000_000, 100_000), rates, NOW)
    assert parts(q) == {
        "base": 40_000,
        "deductible_discount": 0,
        "net_base": 40_000,
        "tax": 2_952,
        "interest": 0,
        "total": 42_952,
    }
    assert q.valid_until == NOW + timedelta(days=30)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RATE_THEFT", "-0.01"),
        ("RATE_GLASS", "1"),
        ("TAX", "1"),
        ("INTEREST", "-0.02"),
        ("DEDUCTIBLE_DISCOUNT_CAP", "1.5"),
        ("TAX", "NaN"),
        ("RATE_FIRE", "a lot"),
        ("VALIDITY_DAYS", "0"),
    ],
)
def test_the_settings_refuse_a_rate_out_of_range(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(f"PAYCORE_BANKING_INSURANCE_{variable}", value)
    with pytest.raises(ValidationError, match=f"insurance_{variable.lower()}"):
        BankingSettings(_env_file=None)  # type: ignore[call-arg]


def rates_of(settings: BankingSettings) -> Rates:
    return Rates.of(
        settings.insurance_coverage_rates,
        deductible_discount_cap=settings.insurance_deductible_discount_cap,
        tax=settings.insurance_tax,
        interest=settings.insurance_interest,
        validity_days=settings.insurance_validity_days,
    )


def defaults(**changed: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "coverage": {c.value: str(r) for c, r in Rates().coverage.items()},
        "deductible_discount_cap": "0.25",
        "tax": "0.05",
        "interest": "0.02",
        "validity_days": 7,
    }
    return values | changed


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"tax": "1"}, "tax must be a Decimal from 0 to less than 1, not Decimal\\('1'\\)"),
        ({"tax": "-0.05"}, "tax must be"),
        ({"interest": "1.02"}, "interest must be"),
        ({"interest": "Infinity"}, "interest must be"),
        ({"deductible_discount_cap": 1}, "deductible_discount_cap must be"),
        ({"tax": 0.05}, "tax must be a Decimal or its text \\(never a float\\), not 0.05"),
        ({"tax": "five percent"}, "tax must be a decimal number, not 'five percent'"),
        ({"validity_days": 0}, "validity_days must be from 1 to 365, not 0"),
        ({"validity_days": 366}, "validity_days must be from 1 to 365"),
        ({"validity_days": 7.0}, "validity_days must be from 1 to 365, not 7.0"),
        ({"coverage": {"collision": "-0.035"}}, "no rate for theft, fire"),
        ({"coverage": defaults()["coverage"] | {"glass": "-0.01"}}, "the rate of glass must be"),
        ({"coverage": defaults()["coverage"] | {"flood": "0.01"}}, "unknown coverage\\(s\\) flood"),
    ],
)
def test_rates_refuse_what_cannot_price_a_quote(changed: dict[str, Any], message: str) -> None:
    values = defaults(**changed)
    with pytest.raises(InvalidRates, match=message):
        Rates.of(values.pop("coverage"), **values)


def test_rates_built_directly_are_checked_too() -> None:
    with pytest.raises(InvalidRates, match="the rate of theft must be"):
        Rates(coverage=dict(Rates().coverage) | {Coverage.THEFT: Decimal("-0.018")})
    with pytest.raises(InvalidRates, match="no rate for roadside"):
        Rates(coverage={c: r for c, r in Rates().coverage.items() if c != Coverage.ROADSIDE})
    with pytest.raises(InvalidRates, match="interest must be"):
        Rates(interest=Decimal("0.02") * 50)


# --- what is insured --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_", "plate"),
    [
        ("ABC1234", "ABC1234"),
        ("ABC-1234", "ABC1234"),
        ("abc-1234", "ABC1234"),
        ("aBc1234", "ABC1234"),
        ("ABC1D23", "ABC1D23"),
        ("abc1d23", "ABC1D23"),
        (" BRA2E19 ", "BRA2E19"),
    ],
)
def test_old_and_mercosul_plates_are_normalized(given_: str, plate: str) -> None:
    assert plate_of(given_) == plate
    assert Vehicle("VW", "Gol", 2010, given_).plate == plate


@pytest.mark.parametrize(
    "plate",
    [
        "",
        "AB1234",  # two letters
        "ABCD123",
        "ABC123",  # three digits
        "ABC12345",
        "ABC-1D23",  # Mercosul has no hyphen
        "ABC1DD3",
        "ABC12D3",
        "ABC 1234",
        "ABC--1234",
        "1234ABC",
        "ÁBC1234",  # not an ASCII letter
        "ßA1234",  # upper-cases to SSA1234: still refused
        "ABC１234",  # a full-width digit
    ],
)
def test_other_plates_are_refused(plate: str) -> None:
    with pytest.raises(InvalidPlate, match="is not a plate: ABC1234 or ABC-1234") as refused:
        Vehicle("VW", "Gol", 2010, plate)
    assert refused.value.code == "invalid-plate"
    assert refused.value.extra == {"field": "vehicle.plate"}


@pytest.mark.parametrize("cpf", ["529.982.247-24", "52998224735", "111.111.111-11", "5299822472"])
def test_a_cpf_failing_its_check_is_refused(cpf: str) -> None:
    with pytest.raises(InvalidCpf, match=r"^insured\.cpf: ") as refused:
        Person("Ana Souza", cpf)
    assert refused.value.extra == {"field": "insured.cpf"}


def test_the_person_is_kept_normalized() -> None:
    assert Person("  Ana Souza ", "529.982.247-25") == Person("Ana Souza", "52998224725")
    assert ANA.cpf == "52998224725"
    assert "52998224725" not in repr(quote(ask(), Rates(), NOW))  # nor in logs


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Person("  ", "52998224725"), "insured.name"),
        (lambda: Person("A" * 121, "52998224725"), "insured.name"),
        (lambda: Vehicle("", "Gol", 2010, "ABC1234"), "vehicle.brand"),
        (lambda: Vehicle("VW", "\t", 2010, "ABC1234"), "vehicle.model"),
        (lambda: Vehicle("VW", None, 2010, "ABC1234"), "vehicle.model"),
    ],
)
def test_blank_or_overlong_text_is_refused_by_name(build: Any, field: str) -> None:
    with pytest.raises(InvalidText, match=f"^{re.escape(field)}: must") as refused:
        build()
    assert refused.value.extra == {"field": field}


@pytest.mark.parametrize("year", [1949, 0, -2023, 2023.0, True, "2023"])
def test_a_year_before_1950_or_not_a_year_is_refused(year: Any) -> None:
    with pytest.raises(InvalidVehicleYear, match=r"^vehicle\.year: must be a year from 1950"):
        Vehicle("VW", "Gol", year, "ABC1234")


def test_the_year_may_be_from_1950_to_next_year() -> None:
    for year in (1950, 2027, 2028):  # NOW is in 2027
        assert quote(ask(vehicle=Vehicle("VW", "Fusca", year, "ABC1234")), Rates(), NOW).total
    with pytest.raises(InvalidVehicleYear, match=r"from 1950 to next year \(2028\), not 2029"):
        quote(ask(vehicle=Vehicle("VW", "Gol", 2029, "ABC1234")), Rates(), NOW)


# --- amounts, coverages, payment ------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -1, MAX_INSURED_AMOUNT + 1, 8_000_000.0, True, "8000000"])
def test_an_insured_amount_out_of_range_or_not_whole_centavos_is_refused(amount: Any) -> None:
    with pytest.raises(InvalidInsuredAmount, match="insured_amount: must be whole centavos"):
        ask(amount, 0)


def test_the_largest_insured_amount_is_taken() -> None:
    assert ask(MAX_INSURED_AMOUNT, 0).insured_amount == MAX_INSURED_AMOUNT


@pytest.mark.parametrize("deductible", [8_000_000, 8_000_001, -1, 100.0, None])
def test_a_deductible_not_below_the_insured_amount_or_negative_is_refused(
    deductible: Any,
) -> None:
    with pytest.raises(InvalidDeductible, match=r"less than the insured amount \(8000000\)") as e:
        ask(8_000_000, deductible)
    assert e.value.code == "invalid-deductible"
    assert e.value.extra == {"field": "deductible"}


def test_a_deductible_just_below_the_insured_amount_is_taken() -> None:
    assert ask(8_000_000, 7_999_999).deductible == 7_999_999


def test_no_coverage_is_refused() -> None:
    with pytest.raises(NoCoverage, match="coverages: ask for one or more of collision, theft"):
        coverages_of([])
    with pytest.raises(NoCoverage):
        ask(coverages=frozenset())


def test_unknown_coverages_are_refused_by_name() -> None:
    with pytest.raises(UnknownCoverage, match="unknown coverage\\(s\\) Theft, flood;") as e:
        coverages_of(["collision", "flood", "Theft"])
    assert e.value.names == ["Theft", "flood"]
    assert e.value.code == "unknown-coverage"
    assert e.value.extra == {"field": "coverages"}
    with pytest.raises(UnknownCoverage):
        ask(coverages=frozenset({"meteor"}))  # type: ignore[arg-type]


def test_coverages_are_a_set_of_the_catalogue() -> None:
    assert coverages_of(["glass", "glass", "fire"]) == {Coverage.GLASS, Coverage.FIRE}
    assert coverages_of(list(Coverage)) == ALL
    with pytest.raises(TypeError, match="not one string"):
        coverages_of("collision")


@pytest.mark.parametrize("method", ["pix", "credit_card", "debit_card", "boleto"])
def test_the_four_payment_methods(method: str) -> None:
    assert ask(payment_method=payment_method_of(method)).payment_method == method


@pytest.mark.parametrize("method", ["cash", "PIX", "credit card", "", "bitcoin"])
def test_an_unknown_payment_method_is_refused_by_name(method: str) -> None:
    with pytest.raises(UnknownPaymentMethod, match=f"unknown payment method '{method}'; one of"):
        payment_method_of(method)
    with pytest.raises(UnknownPaymentMethod):
        ask(payment_method=method)


# --- validity ---------------------------------------------------------------------------------


def test_a_quote_holds_for_its_validity_days() -> None:
    q = quote(ask(), Rates(), NOW)
    assert q.valid_at(NOW)
    assert q.valid_at(NOW + timedelta(days=7) - timedelta(microseconds=1))
    assert not q.valid_at(NOW + timedelta(days=7))
    assert not q.valid_at(NOW - timedelta(seconds=1))
    assert q.valid_at(datetime(2027, 1, 5))  # naive: UTC


def test_a_naive_now_is_utc() -> None:
    assert quote(ask(), Rates(), datetime(2027, 1, 4, 15)).quoted_at == NOW


def test_the_quote_modules_import_no_frameworks() -> None:
    # the import contract "Domain modules import no frameworks" covers them
    assert {"paycore.banking.insurance.quote", "paycore.banking.insurance.policy"} <= set(
        contexts.domain_modules()
    )
