"""The payments context's settings, ``PAYCORE_PAYMENTS_<NAME>``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from paycore.platform.settings import ContextSettings


class PaymentsSettings(ContextSettings):
    model_config = SettingsConfigDict(env_prefix="PAYCORE_PAYMENTS_")

    default_url: str = Field(
        "http://127.0.0.1:8001", description="The default payment processor (lower fee)."
    )
    fallback_url: str = Field(
        "http://127.0.0.1:8002", description="The fallback payment processor (higher fee)."
    )
    max_in_flight: int = Field(
        1000, ge=1, le=20_000, description="Concurrent calls to the payment processors."
    )
    health_seconds: float = Field(
        5.0, ge=5.0, description="Processor health poll interval (they allow 1 call per 5 s)."
    )
    open_purge: bool = Field(
        False,
        description="Let anyone call the purge routes (the Rinha contract requires it; its "
        "deployment sets it); otherwise they need the admin token.",
    )
    slow_ms: int = Field(
        1500, ge=0, description="A processor slower than this is avoided while another is fast."
    )
