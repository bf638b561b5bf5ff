"""The gateway's settings, ``PAYCORE_GATEWAY_<NAME>``."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from paycore.platform.settings import ContextSettings


class GatewaySettings(ContextSettings):
    model_config = SettingsConfigDict(env_prefix="PAYCORE_GATEWAY_")

    rate_per_second: float = Field(
        1000.0, gt=0, description="Requests per second per merchant account (per API process)."
    )
    rate_burst: int = Field(2000, ge=1, description="Requests a merchant may burst.")
    session_hours: float = Field(8.0, gt=0, description="Dashboard session lifetime.")
    live_poll_ms: int = Field(200, ge=10, description="Dashboard feed poll interval.")
    stream_seconds: float = Field(
        15.0, gt=0, description="Lifetime of one dashboard event stream (the browser resumes)."
    )
    max_streams: int = Field(
        5, ge=1, description="Dashboard event streams one account may hold open (per API process)."
    )
    auth_failures: int = Field(
        20, ge=1, description="Bad or disabled secrets one client address may offer per window."
    )
    auth_window_seconds: float = Field(
        60.0, gt=0, description="Window of PAYCORE_GATEWAY_AUTH_FAILURES; refused until it ends."
    )
    worker_roles: str = Field(
        "processor,results",
        description="What `paycore worker --context gateway` runs: processor, results or both.",
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(8, ge=1, le=50)
    webhook_backoff_ms: int = Field(1_000, ge=1, description="First webhook retry delay.")
    webhook_backoff_max_ms: int = Field(300_000, ge=1)
    card_retention_hours: float = Field(
        168.0,
        gt=0,
        description="How long the broker keeps a sealed card (the transactions topic and its "
        "dead-letter topic), decided or not.",
    )
    webhook_allow_private: bool = Field(
        False,
        description="Let webhook URLs reach loopback, private, link-local and other non-public "
        "addresses (receivers on a private network, tests).",
    )

    @field_validator("worker_roles")
    @classmethod
    def _worker_roles(cls, value: str) -> str:
        roles = {r.strip() for r in value.split(",") if r.strip()}
        if not roles or roles - {"processor", "results"}:
            raise ValueError("use 'processor', 'results' or 'processor,results'")
        return ",".join(sorted(roles))
