"""The fulfillment context's settings, ``PAYCORE_FULFILLMENT_<NAME>``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from paycore.platform.settings import ContextSettings


class FulfillmentSettings(ContextSettings):
    model_config = SettingsConfigDict(env_prefix="PAYCORE_FULFILLMENT_")

    cache_size: int = Field(100_000, ge=1, description="Orders kept in memory.")
    batch: int = Field(1000, ge=1, le=10_000, description="Orders stored per commit.")
