"""The payments context's settings, ``PAYCORE_PAYMENTS_<NAME>``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from paycore.platform.settings import DATABASE_SCHEMES, ContextSettings


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
    accept: Literal["broker", "local"] = Field(
        "broker",
        description="How the API makes a payment durable before its 202: 'broker' publishes "
        "it (the payments worker dispatches every payment); 'local' records it in the "
        "database by group commit and the API instance dispatches it itself, no broker or "
        "worker needed (the Rinha deployment, ADR 0017).",
    )
    instance: str = Field(
        "",
        max_length=48,
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="With accept=local: this API instance's name, stable across restarts (it "
        "owns the payments it accepted and takes them up again after a crash); empty means "
        "the host name.",
    )
    journal: str = Field(
        "",
        description="With accept=local: a directory where this instance appends each payment "
        "it takes before its 202, which is then sent without waiting for the database's "
        "commit (the payment survives a kill of the process; the commit and its fsync follow "
        "within milliseconds, ADR 0021). Empty: the 202 waits for the commit.",
    )
    siblings: str = Field(
        "",
        description="With accept=local, where each instance has a database of its own (no "
        "write lock shared between instances): the other instances' database URLs, "
        "comma-separated. The summary and the purge cover them, a payment one of them holds "
        "is not recorded again, and the health poller's lease is held in the first database "
        "of all by URL. Empty: one database for every instance.",
    )

    @property
    def sibling_urls(self) -> list[str]:
        return _urls(self.siblings)

    @field_validator("siblings")
    @classmethod
    def _database_urls(cls, value: str) -> str:
        for url in _urls(value):
            if not url.startswith(DATABASE_SCHEMES):
                raise ValueError(
                    f"{url!r}: each sibling must be a database URL starting with "
                    "sqlite+aiosqlite:// or postgresql+asyncpg://"
                )
        return value


def _urls(listed: str) -> list[str]:
    """The URLs of a comma-separated list, blanks around them and empty entries left out."""
    return [url.strip() for url in listed.split(",") if url.strip()]
