"""The banking context's settings, ``PAYCORE_BANKING_<NAME>``."""

from __future__ import annotations

from pydantic import Field
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
