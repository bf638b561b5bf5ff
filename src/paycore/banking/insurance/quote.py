"""Auto-insurance quotes, with no database: who and what is insured, the coverages asked for,
how the premium is paid, the rates it is priced with, and the quote with every component shown.

Amounts are integer centavos, rates ``Decimal`` fractions of one year. The arithmetic is exact
(fractions); each component is rounded to the centavo once, half up, and every total is a sum
or difference of rounded components, so the components add up to the total exactly:

    premium of a coverage  = round(insured amount × the coverage's rate)
    base                   = the sum of the premiums of the coverages asked for
    deductible discount    = round(base × min(deductible / insured amount, discount cap))
    net base               = base − deductible discount
    total                  = round(net base × (1 + tax + interest))      the seed's rule
    tax                    = round(net base × tax)
    interest               = total − net base − tax

Interest takes what rounding the total once leaves over, so it is within a centavo of
``net base × interest``. Standard library only; see docs/banking-insurance.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from paycore.banking.domain import InvalidCpf, cpf_digits
from paycore.platform.clock import as_utc
from paycore.platform.errors import DomainError

MIN_YEAR: Final = 1950
"""The oldest vehicle insured; the newest is of next year's model."""
MAX_INSURED_AMOUNT: Final = 1_000_000_000
"""The largest insured amount, in centavos (R$ 10,000,000.00)."""
MAX_TEXT: Final = 120
"""The longest name, brand or model, in characters."""
MAX_VALIDITY_DAYS: Final = 365


class Coverage(StrEnum):
    """The catalogue: what a policy may pay for."""

    COLLISION = "collision"  # damage to the insured vehicle in an accident
    THEFT = "theft"  # the vehicle stolen or robbed
    FIRE = "fire"  # the vehicle burnt
    THIRD_PARTY = "third_party"  # damage the driver causes to others and their property
    GLASS = "glass"  # windscreen, windows, lights and mirrors
    ROADSIDE = "roadside"  # towing and assistance on the road


class PaymentMethod(StrEnum):
    PIX = "pix"
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    BOLETO = "boleto"


# --- errors --------------------------------------------------------------------------------


class QuoteError(DomainError):
    """A value of a quote request breaks a rule; ``field`` names it."""

    code = "insurance-quote-error"
    status = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", field=field)
        self.field = field


class InvalidText(QuoteError):
    """A name, brand or model that is not text, is blank or is too long."""

    code = "invalid-text"


class InvalidPlate(QuoteError):
    """A licence plate in neither Brazilian format: ABC1234 (or ABC-1234), Mercosul ABC1D23."""

    code = "invalid-plate"


class InvalidVehicleYear(QuoteError):
    """A vehicle's year before 1950 or after next year."""

    code = "invalid-vehicle-year"


class InvalidInsuredAmount(QuoteError):
    """An insured amount that is not whole centavos above zero, or above the maximum."""

    code = "invalid-insured-amount"


class InvalidDeductible(QuoteError):
    """A deductible that is not whole centavos, is negative, or is not below the insured
    amount."""

    code = "invalid-deductible"


class NoCoverage(QuoteError):
    """No coverage was asked for: a quote covers at least one."""

    code = "no-coverage"


class UnknownCoverage(QuoteError):
    """A coverage that is not in the catalogue."""

    code = "unknown-coverage"

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        super().__init__(
            "coverages",
            f"unknown coverage(s) {', '.join(self.names)}; the catalogue: {', '.join(Coverage)}",
        )


class UnknownPaymentMethod(QuoteError):
    """A payment method other than pix, credit_card, debit_card and boleto."""

    code = "unknown-payment-method"


class InvalidRates(ValueError):
    """Rates that cannot price a quote (a configuration error, not a client's)."""


# --- what is insured -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """The insured person. Built checked: the name trimmed (not blank), the CPF as its 11
    digits, its check digits verified (``InvalidCpf`` otherwise); left out of its ``repr``
    (logs)."""

    name: str
    cpf: str = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _text("insured.name", self.name))
        if not isinstance(self.cpf, str):
            raise InvalidCpf("insured.cpf: a CPF is text", field="insured.cpf")
        try:
            digits = cpf_digits(self.cpf)
        except InvalidCpf as wrong:
            raise InvalidCpf(f"insured.cpf: {wrong.detail}", field="insured.cpf") from None
        object.__setattr__(self, "cpf", digits)


@dataclass(frozen=True, slots=True)
class Vehicle:
    """The insured vehicle. Built checked: brand and model trimmed, the plate normalized
    (``plate_of``), the year ``MIN_YEAR`` or later (``quote`` checks it is not after next
    year: that depends on the day of the quote)."""

    brand: str
    model: str
    year: int
    plate: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "brand", _text("vehicle.brand", self.brand))
        object.__setattr__(self, "model", _text("vehicle.model", self.model))
        if not _whole(self.year) or self.year < MIN_YEAR:
            raise InvalidVehicleYear(
                "vehicle.year", f"must be a year from {MIN_YEAR} to next year, not {self.year!r}"
            )
        object.__setattr__(self, "plate", plate_of(self.plate))


_OLD_PLATE = re.compile(r"[A-Za-z]{3}-?[0-9]{4}")
_MERCOSUL_PLATE = re.compile(r"[A-Za-z]{3}[0-9][A-Za-z][0-9]{2}")


def plate_of(text: str) -> str:
    """A Brazilian licence plate as ``ABC1234`` or ``ABC1D23``: the old format (``ABC1234``,
    ``ABC-1234``) or Mercosul's (``ABC1D23``, no hyphen), ASCII letters in either case,
    surrounding spaces ignored; upper case without the hyphen. ``InvalidPlate`` otherwise."""
    plate = text.strip() if isinstance(text, str) else ""
    if not (_OLD_PLATE.fullmatch(plate) or _MERCOSUL_PLATE.fullmatch(plate)):
        raise InvalidPlate(
            "vehicle.plate",
            f"{text!r} is not a plate: ABC1234 or ABC-1234 (old), ABC1D23 (Mercosul)",
        )
    return plate.replace("-", "").upper()


def coverages_of(names: Iterable[str]) -> frozenset[Coverage]:
    """The coverages named, each once however often it is named: ``NoCoverage`` for none,
    ``UnknownCoverage`` naming every name that is not in the catalogue."""
    if isinstance(names, str):
        raise TypeError("coverages are a collection of names, not one string")
    chosen = list(names)
    unknown = {str(name) for name in chosen if name not in _COVERAGES}
    if unknown:
        raise UnknownCoverage(unknown)
    if not chosen:
        raise NoCoverage("coverages", f"ask for one or more of {', '.join(Coverage)}")
    return frozenset(_COVERAGES[name] for name in chosen)


_COVERAGES: Final = {coverage.value: coverage for coverage in Coverage}


def payment_method_of(name: str) -> PaymentMethod:
    """The payment method named; ``UnknownPaymentMethod`` otherwise."""
    for method in PaymentMethod:
        if name == method.value:
            return method
    raise UnknownPaymentMethod(
        "payment_method",
        f"unknown payment method {name!r}; one of {', '.join(PaymentMethod)}",
    )


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    """What a quote is asked for. Built checked: the insured amount whole centavos from 1 to
    ``MAX_INSURED_AMOUNT``, the deductible whole centavos from 0 to less than the insured
    amount, at least one coverage, a payment method (``coverages_of`` and
    ``payment_method_of`` turn names into them)."""

    insured: Person
    vehicle: Vehicle
    insured_amount: int
    deductible: int
    coverages: frozenset[Coverage]
    payment_method: PaymentMethod

    def __post_init__(self) -> None:
        amount, deductible = self.insured_amount, self.deductible
        if not _whole(amount) or not 0 < amount <= MAX_INSURED_AMOUNT:
            raise InvalidInsuredAmount(
                "insured_amount",
                f"must be whole centavos from 1 to {MAX_INSURED_AMOUNT} "
                f"(R$ 10,000,000.00), not {amount!r}",
            )
        if not _whole(deductible) or not 0 <= deductible < amount:
            raise InvalidDeductible(
                "deductible",
                f"must be whole centavos from 0 to less than the insured amount ({amount}), "
                f"not {deductible!r}",
            )
        object.__setattr__(self, "coverages", coverages_of(self.coverages))
        object.__setattr__(self, "payment_method", payment_method_of(self.payment_method))


def _text(field: str, value: str) -> str:
    if not isinstance(value, str):
        raise InvalidText(field, f"must be text, not {value!r}")
    text = value.strip()
    if not text:
        raise InvalidText(field, "must not be blank")
    if len(text) > MAX_TEXT:
        raise InvalidText(field, f"must be at most {MAX_TEXT} characters, not {len(text)}")
    return text


def _whole(value: object) -> bool:
    """Whether ``value`` is an integer (not a bool, never a float)."""
    return isinstance(value, int) and not isinstance(value, bool)


# --- rates ---------------------------------------------------------------------------------


DEFAULT_COVERAGE_RATES: Final[Mapping[Coverage, Decimal]] = MappingProxyType(
    {
        Coverage.COLLISION: Decimal("0.035"),
        Coverage.THEFT: Decimal("0.018"),
        Coverage.FIRE: Decimal("0.004"),
        Coverage.THIRD_PARTY: Decimal("0.012"),
        Coverage.GLASS: Decimal("0.006"),
        Coverage.ROADSIDE: Decimal("0.003"),
    }
)
"""Each coverage's yearly premium as a fraction of the insured amount, by default."""


@dataclass(frozen=True, slots=True)
class Rates:
    """What a quote is priced with: ``coverage``, every coverage's yearly rate on the insured
    amount; ``deductible_discount_cap``, the largest share of the base the deductible takes
    off; ``tax`` and ``interest``, the seed's surcharges on the net base; each a ``Decimal``
    from 0 to less than 1. ``validity_days``: how long a quote holds (1 to 365). Built
    checked: ``InvalidRates`` naming the first value that is wrong."""

    coverage: Mapping[Coverage, Decimal] = field(default_factory=lambda: DEFAULT_COVERAGE_RATES)
    deductible_discount_cap: Decimal = Decimal("0.25")
    tax: Decimal = Decimal("0.05")
    interest: Decimal = Decimal("0.02")
    validity_days: int = 7

    def __post_init__(self) -> None:
        unknown = sorted(str(c) for c in self.coverage if c not in _COVERAGES)
        if unknown:
            raise InvalidRates(f"unknown coverage(s) {', '.join(unknown)}")
        missing = [c.value for c in Coverage if c not in self.coverage]
        if missing:
            raise InvalidRates(f"no rate for {', '.join(missing)}: every coverage needs one")
        for coverage in Coverage:
            _check_fraction(f"the rate of {coverage}", self.coverage[coverage])
        prices = {c: self.coverage[c] for c in Coverage}  # a copy, in the catalogue's order
        object.__setattr__(self, "coverage", MappingProxyType(prices))
        _check_fraction("deductible_discount_cap", self.deductible_discount_cap)
        _check_fraction("tax", self.tax)
        _check_fraction("interest", self.interest)
        if not _whole(self.validity_days) or not 1 <= self.validity_days <= MAX_VALIDITY_DAYS:
            raise InvalidRates(
                f"validity_days must be from 1 to {MAX_VALIDITY_DAYS}, not {self.validity_days!r}"
            )

    @classmethod
    def of(
        cls,
        coverage: Mapping[str, Decimal | int | str],
        *,
        deductible_discount_cap: Decimal | int | str,
        tax: Decimal | int | str,
        interest: Decimal | int | str,
        validity_days: int,
    ) -> Rates:
        """Rates from plain values (settings, a file): coverages by name, each rate a
        ``Decimal`` or its text (``"0.035"``), never a float. ``InvalidRates`` naming the
        first value that is wrong."""
        unknown = sorted(set(coverage) - set(_COVERAGES))
        if unknown:
            raise InvalidRates(f"unknown coverage(s) {', '.join(unknown)}")
        return cls(
            coverage={_COVERAGES[n]: _decimal(f"the rate of {n}", r) for n, r in coverage.items()},
            deductible_discount_cap=_decimal("deductible_discount_cap", deductible_discount_cap),
            tax=_decimal("tax", tax),
            interest=_decimal("interest", interest),
            validity_days=validity_days,
        )


def _decimal(name: str, value: Decimal | int | str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if _whole(value):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise InvalidRates(f"{name} must be a decimal number, not {value!r}") from None
    raise InvalidRates(f"{name} must be a Decimal or its text (never a float), not {value!r}")


def _check_fraction(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or not 0 <= value < 1:
        raise InvalidRates(f"{name} must be a Decimal from 0 to less than 1, not {value!r}")


# --- the quote -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """A request priced: every component in centavos, rounded as the module's doc says
    (``premiums``: the coverages asked for, in the catalogue's order), and the rates used.
    It holds from ``quoted_at`` until (not including) ``valid_until``; the policy it buys runs
    one year (``policy.policy_end``)."""

    request: QuoteRequest
    rates: Rates
    premiums: Mapping[Coverage, int]
    base: int
    deductible_discount: int
    net_base: int
    tax: int
    interest: int
    total: int
    quoted_at: datetime
    valid_until: datetime

    def valid_at(self, moment: datetime) -> bool:
        """Whether the quote may still be taken at ``moment`` (a naive one is UTC)."""
        return self.quoted_at <= as_utc(moment) < self.valid_until


def quote(request: QuoteRequest, rates: Rates, now: datetime) -> Quote:
    """``request`` priced with ``rates`` at ``now`` (a naive one is UTC): see the module's doc.
    ``InvalidVehicleYear`` if the vehicle's year is after next year (``now``'s year + 1, UTC)."""
    now = as_utc(now)
    newest = now.year + 1
    if request.vehicle.year > newest:
        raise InvalidVehicleYear(
            "vehicle.year",
            f"must be a year from {MIN_YEAR} to next year ({newest}), not {request.vehicle.year}",
        )
    amount = request.insured_amount
    premiums = {
        coverage: _round(amount * Fraction(rates.coverage[coverage]))
        for coverage in Coverage
        if coverage in request.coverages
    }
    base = sum(premiums.values())
    share = min(Fraction(request.deductible, amount), Fraction(rates.deductible_discount_cap))
    discount = _round(base * share)
    net = base - discount
    total = _round(net * (1 + Fraction(rates.tax) + Fraction(rates.interest)))
    tax = _round(net * Fraction(rates.tax))
    return Quote(
        request=request,
        rates=rates,
        premiums=MappingProxyType(premiums),
        base=base,
        deductible_discount=discount,
        net_base=net,
        tax=tax,
        interest=total - net - tax,
        total=total,
        quoted_at=now,
        valid_until=now + timedelta(days=rates.validity_days),
    )


def _round(value: Fraction) -> int:
    """To the centavo, half up (every value rounded here is zero or more)."""
    return math.floor(value + Fraction(1, 2))
