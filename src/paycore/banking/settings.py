"""The banking context's settings, ``PAYCORE_BANKING_<NAME>``."""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from paycore.platform.settings import ContextSettings


class BankingSettings(ContextSettings):
    model_config = SettingsConfigDict(env_prefix="PAYCORE_BANKING_")

    ledger_batch: int = Field(
        2000,
        ge=1,
        le=10_000,
        description="Transfers the ledger worker applies per commit (taken from the broker).",
    )
    expiry_poll_ms: int = Field(
        200, ge=10, le=60_000, description="How often the ledger worker looks for due holds."
    )
    card_bin: str = Field(
        "650485",
        pattern="^[0-9]{6,8}$",
        description="The first 6 to 8 digits of the card numbers banking issues (its BIN); "
        "the default is in Elo's range.",
    )
    card_years: int = Field(
        5,
        ge=1,
        le=20,
        description="A card issued now expires at the end of its month this many years ahead.",
    )
    card_hold_seconds: int = Field(
        7 * 24 * 3600,
        ge=60,
        le=366 * 24 * 3600,
        description="How long a card authorization holds its amount: not captured by then, the "
        "ledger releases it.",
    )
    card_max_credit_limit_cents: int = Field(
        5_000_000,
        ge=1,
        le=10**15,
        description="The largest credit limit of one credit card, in cents (50,000.00 BRL).",
    )

    insurance_rate_collision: Decimal = Field(
        Decimal("0.035"),
        ge=0,
        lt=1,
        description="Yearly premium of the collision coverage, a fraction of the insured amount.",
    )
    insurance_rate_theft: Decimal = Field(
        Decimal("0.018"), ge=0, lt=1, description="Yearly premium of the theft coverage."
    )
    insurance_rate_fire: Decimal = Field(
        Decimal("0.004"), ge=0, lt=1, description="Yearly premium of the fire coverage."
    )
    insurance_rate_third_party: Decimal = Field(
        Decimal("0.012"), ge=0, lt=1, description="Yearly premium of the third-party coverage."
    )
    insurance_rate_glass: Decimal = Field(
        Decimal("0.006"), ge=0, lt=1, description="Yearly premium of the glass coverage."
    )
    insurance_rate_roadside: Decimal = Field(
        Decimal("0.003"), ge=0, lt=1, description="Yearly premium of roadside assistance."
    )
    insurance_deductible_discount_cap: Decimal = Field(
        Decimal("0.25"),
        ge=0,
        lt=1,
        description="The deductible takes its share of the insured amount off the base "
        "premium, up to this share.",
    )
    insurance_tax: Decimal = Field(
        Decimal("0.05"), ge=0, lt=1, description="Tax on the net base premium (the seed's 5%)."
    )
    insurance_interest: Decimal = Field(
        Decimal("0.02"), ge=0, lt=1, description="Interest on the net base premium (the seed's 2%)."
    )
    insurance_validity_days: int = Field(
        7, ge=1, le=365, description="How many days a quote may be taken after it is given."
    )

    pix_ispb: str = Field(
        "99999999",
        pattern="^[0-9]{8}$",
        description="The bank's ISPB, the 8 digits naming a Pix participant, in its end-to-end "
        "and return ids; the default is a made-up placeholder: set the bank's own.",
    )
    pix_location_host: str = Field(
        "pix.paycore.dev",
        max_length=33,
        pattern=r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?$",
        description="The host of dynamic charges' locations: a code carries "
        "<host>/pix/v2/cob/<32 hex digits>, without a scheme, 77 characters at most.",
    )
    pix_city: str = Field(
        "SAO PAULO",
        pattern="^[ -~]*[A-Za-z0-9][ -~]*$",
        max_length=15,
        description="The merchant city of the bank's BR Codes (field 60): printable ASCII.",
    )

    @property
    def insurance_coverage_rates(self) -> dict[str, Decimal]:
        """Each coverage's rate by its name (``insurance.quote.Rates.of`` takes them)."""
        return {
            "collision": self.insurance_rate_collision,
            "theft": self.insurance_rate_theft,
            "fire": self.insurance_rate_fire,
            "third_party": self.insurance_rate_third_party,
            "glass": self.insurance_rate_glass,
            "roadside": self.insurance_rate_roadside,
        }

    loans_monthly_rate: Decimal = Field(
        Decimal("0.0199"),
        ge=0,
        le=10,
        description="The bank's loan rate a month, a fraction (0.0199 is 1.99 %): simulations "
        "show it, each application keeps the one it was made at.",
    )
    loans_max_income_share: Decimal = Field(
        Decimal("0.30"),
        gt=0,
        le=1,
        description="A loan is approved only if its largest instalment is at most this share "
        "of the monthly income the applicant declared.",
    )
    loans_min_principal_cents: int = Field(
        10_000, ge=1, le=10**15, description="The smallest principal lent, in cents (100.00)."
    )
    loans_max_principal_cents: int = Field(
        5_000_000, ge=1, le=10**15, description="The largest principal lent, in cents (50,000.00)."
    )
    loans_min_term: int = Field(1, ge=1, le=420, description="The shortest term, in months.")
    loans_max_term: int = Field(60, ge=1, le=420, description="The longest term, in months.")
    loans_max_open: int = Field(
        3, ge=1, le=100, description="Loans one customer may have open (not repaid) at once."
    )
    loans_batch: int = Field(
        100,
        ge=1,
        le=1_000,
        description="Loan applications the banking worker decides per commit (taken from the "
        "broker).",
    )
    loans_poll_ms: int = Field(
        60_000,
        ge=10,
        le=3_600_000,
        description="How often the banking worker looks for instalments due (and overdue) to "
        "collect from the borrowers' accounts.",
    )

    @model_validator(mode="after")
    def _loan_bounds(self) -> Self:
        if self.loans_min_principal_cents > self.loans_max_principal_cents:
            raise ValueError("loans_min_principal_cents is above loans_max_principal_cents")
        if self.loans_min_term > self.loans_max_term:
            raise ValueError("loans_min_term is above loans_max_term")
        return self
