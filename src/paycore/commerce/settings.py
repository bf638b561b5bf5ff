"""The commerce context's settings, ``PAYCORE_COMMERCE_<NAME>``. Each is also read under the
name it had before the contexts had prefixes of their own (``PAYCORE_ANALYTICS_URL``, …)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from paycore.platform.settings import ContextSettings


def _names(name: str, *older: str) -> AliasChoices:
    return AliasChoices(f"PAYCORE_COMMERCE_{name}", *(f"PAYCORE_{o}" for o in older))


class CommerceSettings(ContextSettings):
    model_config = SettingsConfigDict(env_prefix="PAYCORE_COMMERCE_")

    analytics_url: str = Field(
        "",
        validation_alias=_names("ANALYTICS_URL", "ANALYTICS_URL"),
        description="Base URL of the analytics service; empty means http://HOST:WORKER_PORT.",
    )
    analytics_ttl_seconds: int = Field(
        30 * 24 * 3600,
        ge=1,
        validation_alias=_names("ANALYTICS_TTL_SECONDS", "ANALYTICS_TTL_SECONDS"),
        description="TTL of the Redis rankings, renewed on each order.",
    )
    archive_flush_seconds: float = Field(
        2.0,
        gt=0,
        validation_alias=_names("ARCHIVE_FLUSH_SECONDS", "ARCHIVE_FLUSH_SECONDS"),
        description="How often the archive is written.",
    )
