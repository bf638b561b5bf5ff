"""Settings and broker URLs: bad values are refused with a message naming the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from paycore.bootstrap import ConfigurationError, load
from paycore.commerce.settings import CommerceSettings
from paycore.gateway.settings import GatewaySettings
from paycore.platform.messaging.brokers import create_bus
from paycore.platform.messaging.brokers.nats import servers as nats_servers
from paycore.platform.messaging.bus import UrlOptions
from paycore.platform.settings import Settings


def test_defaults_are_embedded() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_broker_url == "nats://127.0.0.1:4222"


def test_the_data_lives_in_the_users_data_folder_from_any_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PAYCORE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    for folder in (tmp_path, tmp_path / "share"):
        folder.mkdir(exist_ok=True)
        monkeypatch.chdir(folder)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert settings.data_dir == tmp_path / "share" / "paycore"
        assert settings.effective_database_url.endswith(f"{tmp_path}/share/paycore/paycore.db")
    monkeypatch.setenv("PAYCORE_DATA_DIR", "here")  # still the override, made absolute
    assert Settings(_env_file=None).data_dir == tmp_path / "share" / "here"  # type: ignore[call-arg]


def test_consumers_linger_longer_on_sqlite_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).effective_consumer_linger_ms == 30  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    assert Settings(_env_file=None).effective_consumer_linger_ms == 10  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_CONSUMER_LINGER_MS", "0")
    assert Settings(_env_file=None).effective_consumer_linger_ms == 0  # type: ignore[call-arg]


def test_gateway_guard_settings_have_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = GatewaySettings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.auth_failures, settings.auth_window_seconds) == (20, 60.0)
    assert settings.webhook_allow_private is False
    assert settings.max_streams == 5
    monkeypatch.setenv("PAYCORE_GATEWAY_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("PAYCORE_GATEWAY_MAX_STREAMS", "2")
    changed = GatewaySettings(_env_file=None)  # type: ignore[call-arg]
    assert (changed.webhook_allow_private, changed.max_streams) == (True, 2)


def test_commerce_settings_are_read_under_their_prefix_and_their_former_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert CommerceSettings(_env_file=None).archive_flush_seconds == 2.0  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_ARCHIVE_FLUSH_SECONDS", "3")
    monkeypatch.setenv("PAYCORE_COMMERCE_ANALYTICS_URL", "http://analytics:8010")
    settings = CommerceSettings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.archive_flush_seconds, settings.analytics_url) == (
        3.0,
        "http://analytics:8010",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("broker_url", "mqtt://host", "unsupported broker URL scheme"),
        ("broker_url", "nats://host:4222?ack_wait=soon", "ack_wait='soon' is not a number"),
        ("broker_url", "kafka://?partitions=3", "no broker address"),
        ("broker_url", "none://host", "'none' takes no options"),
        ("database_url", "mysql://x", "must start with"),
        ("api_port", "70000", "less than or equal to 65535"),
        ("service_token", "short", "at least 8 characters"),
    ],
)
def test_bad_settings_are_refused_clearly(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"PAYCORE_{field.upper()}", value)
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        ("PAYCORE_GATEWAY_AUTH_FAILURES", "0", "PAYCORE_GATEWAY_AUTH_FAILURES: Input should be"),
        ("PAYCORE_GATEWAY_MAX_STREAMS", "0", "PAYCORE_GATEWAY_MAX_STREAMS: Input should be"),
        ("PAYCORE_GATEWAY_WORKER_ROLES", "cook", "PAYCORE_GATEWAY_WORKER_ROLES: Value error"),
        ("PAYCORE_PAYMENTS_HEALTH_SECONDS", "1", "PAYCORE_PAYMENTS_HEALTH_SECONDS: Input should"),
        ("PAYCORE_PAYMENTS_ACCEPT", "later", "PAYCORE_PAYMENTS_ACCEPT: Input should be"),
        ("PAYCORE_PAYMENTS_INSTANCE", "api 1", "PAYCORE_PAYMENTS_INSTANCE: String should"),
        ("PAYCORE_FULFILLMENT_BATCH", "x", "PAYCORE_FULFILLMENT_BATCH: Input should be"),
        ("PAYCORE_ARCHIVE_FLUSH_SECONDS", "0", "ARCHIVE_FLUSH_SECONDS: Input should be"),
    ],
)
def test_a_bad_context_setting_stops_the_process_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load([])
    assert line in str(caught.value)


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


def test_a_nats_cluster_is_listed_node_by_node() -> None:
    assert nats_servers("nats://n1:4222,n2:4222, n3:4223") == [
        "nats://n1:4222",
        "nats://n2:4222",
        "nats://n3:4223",
    ]
    assert nats_servers("nats://u:p@n1:4222,n2:4222") == [
        "nats://u:p@n1:4222",
        "nats://u:p@n2:4222",
    ]
    assert nats_servers("nats://h:4222") == ["nats://h:4222"]
    settings = Settings(_env_file=None, broker_url="nats://n1:4222,n2:4222?replicas=3")  # type: ignore[call-arg]
    assert settings.effective_broker_url.startswith("nats://n1:4222,n2:4222")
