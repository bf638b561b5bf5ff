"""Settings, read from the environment or a ``.env`` file: the shared ones (``Settings``, prefix
``PAYCORE_``: database, broker, data dir, logging, credentials, HTTP and messaging knobs), and
the base of each context's own (``ContextSettings``, with the context's prefix,
``PAYCORE_<CONTEXT>_``, in the context's ``settings.py``).

Nothing here performs I/O at import time: ``Settings()`` is built in the CLI and passed down.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from paycore.platform.persistence.db import is_sqlite

BROKER_SCHEMES = ("nats", "amqp", "amqps", "kafka", "redis", "rediss", "none")
DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
"""How a database URL paycore can use starts."""
NatsSync = Literal["always", "interval"]
FORMER_SERVICE_TOKEN = "dev-service-token"  # noqa: S105 - the former built-in default, refused


class Settings(BaseSettings):
    """The shared knobs. Each field maps to ``PAYCORE_<NAME>``; the README lists them."""

    model_config = SettingsConfigDict(env_prefix="PAYCORE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("paycore", appauthor=False)),
        description="Where embedded data lives: the user's data folder unless set (the same "
        "from any working directory).",
    )
    database_url: str = Field(
        "", description="SQLAlchemy async URL; empty means SQLite in the data dir."
    )
    broker_url: str = Field(
        "",
        description="nats://, amqp://, kafka:// or redis://; empty means embedded NATS; 'none' for "
        "processes that exchange nothing through a broker (the Rinha deployment).",
    )
    redis_url: str = Field("", description="Redis for caches; empty means in-process caches.")
    host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    worker_port: int = Field(8010, ge=1, le=65535, description="HTTP port of `paycore worker`.")
    service_token: str = Field(
        "",
        description="Credential between internal services; empty: generated (embedded "
        "platform) or refused (PostgreSQL), see paycore.platform.keystore.",
    )
    nats_port: int = Field(4222, ge=1, le=65535, description="Port of the embedded NATS server.")
    nats_sync: NatsSync = Field(
        "always", description="Embedded JetStream fsync: every write ('always') or every 2 min."
    )
    log_level: str = "INFO"
    log_json: bool = True
    otlp_endpoint: str = Field(
        "",
        description="OTLP/HTTP collector to export spans to (its base URL; spans go to "
        "<url>/v1/traces), with the otel extra installed; empty: OpenTelemetry's own "
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT, else none.",
    )
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
        "empty: generated (embedded platform) or refused (PostgreSQL).",
    )
    secret_pepper: str = Field(
        "",
        description="Key of the keyed hashes (secrets, card fingerprints, sessions); empty: "
        "generated (embedded platform) or refused (PostgreSQL).",
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
    trusted_proxies: str = Field(
        "",
        description="Addresses or networks (comma-separated; '*' for any) of the proxies whose "
        "X-Forwarded-For/-Proto the HTTP servers believe; empty: none, the peer is the client.",
    )
    http_timeout_seconds: float = Field(2.0, gt=0)
    http_retries: int = Field(2, ge=0, le=10)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()  # printed, and handed to child processes

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

    @field_validator("service_token")
    @classmethod
    def _service_token(cls, value: str) -> str:
        if value == FORMER_SERVICE_TOKEN:
            raise ValueError(
                f"{FORMER_SERVICE_TOKEN!r} was the public default: set a secret of your own, or "
                "leave it empty on the embedded platform to have one generated"
            )
        if value and len(value) < 8:
            raise ValueError("should have at least 8 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        for entry in _entries(value):
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
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
        if value and not value.startswith(DATABASE_SCHEMES):
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
    def otlp_traces_endpoint(self) -> str:
        """The URL spans are exported to (``otlp_endpoint``, else OpenTelemetry's variables,
        read as its SDK reads them); empty: spans are not exported."""
        if self.otlp_endpoint:
            return _traces_url(self.otlp_endpoint)
        if url := os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
            return url
        if url := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            return _traces_url(url)
        return ""

    @property
    def trusted_proxy_list(self) -> list[str]:
        return _entries(self.trusted_proxies)

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or f"nats://127.0.0.1:{self.nats_port}"


def _traces_url(base: str) -> str:
    return base.rstrip("/") + "/v1/traces"


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]


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
