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
