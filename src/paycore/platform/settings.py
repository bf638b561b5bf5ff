"""Settings, read from the environment or a ``.env`` file: the shared ones (``Settings``, prefix
``PAYCORE_``: database, broker, data dir, logging, credentials, HTTP and messaging knobs), and
the base of each context's own (``ContextSettings``, with the context's prefix,
``PAYCORE_<CONTEXT>_``, in the context's ``settings.py``).

Nothing here performs I/O at import time: ``Settings()`` is built in the CLI and passed down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from paycore.platform.persistence.db import is_sqlite

BROKER_SCHEMES = ("nats", "amqp", "amqps", "kafka", "redis", "rediss")
NatsSync = Literal["always", "interval"]


class Settings(BaseSettings):
    """The shared knobs. Each field maps to ``PAYCORE_<NAME>``; the README lists them."""

    model_config = SettingsConfigDict(env_prefix="PAYCORE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".paycore"), description="Where embedded data lives.")
    database_url: str = Field(
        "", description="SQLAlchemy async URL; empty means SQLite in the data dir."
    )
    broker_url: str = Field(
        "", description="nats://, amqp://, kafka:// or redis://; empty means embedded NATS."
    )
    redis_url: str = Field("", description="Redis for caches; empty means in-process caches.")
    host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    worker_port: int = Field(8010, ge=1, le=65535, description="HTTP port of `paycore worker`.")
    service_token: str = Field(
        "dev-service-token", min_length=8, description="Credential between internal services."
    )
    nats_port: int = Field(4222, ge=1, le=65535, description="Port of the embedded NATS server.")
    nats_sync: NatsSync = Field(
        "always", description="Embedded JetStream fsync: every write ('always') or every 2 min."
    )
    log_level: str = "INFO"
    log_json: bool = True
    outbox_poll_ms: int = Field(50, ge=1, description="Outbox relay poll interval.")
    outbox_idle_poll_ms: int = Field(
        1_000, ge=1, description="Longest poll interval of an idle relay (it backs off to it)."
    )
    outbox_batch: int = Field(500, ge=1, le=10_000)
    consumer_max_attempts: int = Field(5, ge=1, le=100)
    consumer_backoff_ms: int = Field(100, ge=1, description="First retry delay; doubles each time.")
    consumer_backoff_max_ms: int = Field(5_000, ge=1)
    consumer_batch: int = Field(100, ge=1, le=10_000)
    consumer_linger_ms: int | None = Field(
        None,
        ge=0,
        le=1_000,
        description="After a batch smaller than PAYCORE_CONSUMER_BATCH, wait this long "
        "before fetching the next: fewer, fuller batches for at most this much more lag. "
        "Unset: 30 on SQLite (each consumer transaction takes the write lock the API needs), "
        "10 elsewhere.",
    )
    inbox_retention_hours: int = Field(168, ge=1, description="How long consumed ids are kept.")
    idempotency_retention_hours: int = Field(24, ge=1, description="How long keys are replayed.")
    idempotency_lease_seconds: float = Field(
        5.0,
        ge=0.5,
        le=600,
        description="How long a running request holds its Idempotency-Key unless it renews it "
        "(it does, every third of it); a retry after the process died proceeds once it ran out.",
    )
    admin_token: str = Field(
        "", description="Operator credential of the admin routes; empty turns them off."
    )
    card_keys: str = Field(
        "",
        description="AES keys sealing card data: 'kid:base64key,…', first one current; "
        "empty means an insecure development key.",
    )
    secret_pepper: str = Field(
        "", description="Key of the keyed hashes (secrets, card fingerprints, sessions)."
    )
    max_body_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="Largest request body any route takes; a larger one is answered 413 before "
        "it is read.",
    )
    http_keepalive_seconds: int = Field(
        75, ge=1, description="How long the HTTP servers keep an idle client connection open."
    )
    http_timeout_seconds: float = Field(2.0, gt=0)
    http_retries: int = Field(2, ge=0, le=10)

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value and value.split("://", 1)[0] not in BROKER_SCHEMES:
            raise ValueError(
                f"unsupported broker URL scheme; use one of {', '.join(BROKER_SCHEMES)}"
            )
        if value:
            from paycore.platform.messaging.brokers import create_bus

            create_bus(value)  # checks the URL's options now; no connection is made
        return value

    @field_validator("card_keys")
    @classmethod
    def _card_keys(cls, value: str) -> str:
        if value:  # empty means development keys (and no need to load the crypto library)
            from paycore.platform.cards import Keyring

            Keyring.parse(value)  # a malformed key list stops the process at start
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'paycore.db'}"

    @property
    def effective_consumer_linger_ms(self) -> int:
        if self.consumer_linger_ms is not None:
            return self.consumer_linger_ms
        return 30 if is_sqlite(self.effective_database_url) else 10

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"nats://127.0.0.1:{self.nats_port}"


class ContextSettings(BaseSettings):
    """Base of a context's own settings: give the subclass its prefix (``PAYCORE_<CONTEXT>_``)
    in its ``model_config``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)


def problems(exc: ValidationError, settings: type[BaseSettings]) -> list[str]:
    """One line per refused value, naming its environment variable."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    lines = []
    for err in exc.errors():
        where = "_".join(str(p) for p in err["loc"]).upper()
        name = where if where.startswith("PAYCORE_") else prefix.upper() + where
        lines.append(f"{name}: {err['msg']}")
    return lines
