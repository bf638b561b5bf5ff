"""Settings and broker URLs: bad values are refused with a message naming the problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from paycore.config import Settings
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.bus import UrlOptions


def test_defaults_are_embedded() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_broker_url == "nats://127.0.0.1:4222"
    assert settings.effective_analytics_url == "http://127.0.0.1:8010"


def test_consumers_linger_longer_on_sqlite_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).effective_consumer_linger_ms == 30  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    assert Settings(_env_file=None).effective_consumer_linger_ms == 10  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_CONSUMER_LINGER_MS", "0")
    assert Settings(_env_file=None).effective_consumer_linger_ms == 0  # type: ignore[call-arg]


def test_gateway_guard_settings_have_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.gateway_auth_failures, settings.gateway_auth_window_seconds) == (20, 60.0)
    assert settings.gateway_webhook_allow_private is False
    assert settings.gateway_max_streams == 5
    monkeypatch.setenv("PAYCORE_GATEWAY_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("PAYCORE_GATEWAY_MAX_STREAMS", "2")
    changed = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (changed.gateway_webhook_allow_private, changed.gateway_max_streams) == (True, 2)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("broker_url", "mqtt://host", "unsupported broker URL scheme"),
        ("broker_url", "nats://host:4222?ack_wait=soon", "ack_wait='soon' is not a number"),
        ("broker_url", "kafka://?partitions=3", "no broker address"),
        ("database_url", "mysql://x", "must start with"),
        ("api_port", "70000", "less than or equal to 65535"),
        ("service_token", "short", "at least 8 characters"),
        ("gateway_auth_failures", "0", "greater than or equal to 1"),
        ("gateway_max_streams", "0", "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"PAYCORE_{field.upper()}", value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert message in str(caught.value)


def test_url_options_are_taken_out_and_the_rest_kept() -> None:
    options = UrlOptions(
        "redis://h:6379/0?claim_idle_ms=1500&ssl_cert_reqs=none", ["claim_idle_ms"]
    )
    assert options.integer("claim_idle_ms", 30000) == 1500
    assert options.integer("maxlen", 7) == 7
    assert options.url == "redis://h:6379/0?ssl_cert_reqs=none"


def test_every_scheme_has_an_adapter() -> None:
    for url in ("nats://h:4222", "amqp://u:p@h/", "kafka://h:9092", "redis://h:6379/0"):
        assert create_bus(url) is not None
    with pytest.raises(ValueError, match="unsupported broker URL"):
        create_bus("ftp://h")
