"""Secrets of an installation (issue 22, item 13): no built-in card key, pepper or service token;
the embedded platform generates them once into its data dir (0600), every process reading the
same file; a deployment on PostgreSQL refuses to start without them."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError
from web_kit import served

from paycore.bootstrap import ConfigurationError, with_secrets
from paycore.commerce.analytics import api as analytics_api
from paycore.contexts import processes
from paycore.platform import keystore
from paycore.platform.cards import CardKeyError, Hasher, Keyring, Sealed
from paycore.platform.settings import Settings

POSTGRES = "postgresql+asyncpg://paycore@127.0.0.1/paycore"
# What every paycore installation without keys used to seal with (the removed constant).
FORMER_MATERIAL = b"paycore-development-only-not-a-secret"
FORMER_KEY = hashlib.sha256(FORMER_MATERIAL + b"card").digest()


def settings(data_dir: Path, **values: str) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, **values)  # type: ignore[call-arg]


def test_the_first_start_generates_the_secrets_into_the_data_dir_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    resolved, generated = keystore.resolve(settings(tmp_path / "data"), ["card_keys"])
    path = tmp_path / "data" / "secrets.json"
    assert generated == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = orjson.loads(path.read_bytes())
    assert stored == {
        "card_keys": resolved.card_keys,
        "secret_pepper": resolved.secret_pepper,
        "service_token": resolved.service_token,
    }
    ring = Keyring.parse(resolved.card_keys)  # a usable AES-256 key under its own id
    assert ring.open(ring.seal(b"card", "tx"), "tx") == b"card"
    assert len(base64.b64decode(resolved.card_keys.partition(":")[2])) == 32
    assert len(resolved.secret_pepper) >= 40
    assert len(resolved.service_token) >= 40
    assert not list((tmp_path / "data").glob(".secrets.json.*"))  # no temporary left


def test_later_starts_reuse_them_and_configured_ones_win(tmp_path: Path) -> None:
    first, _ = keystore.resolve(settings(tmp_path), ["card_keys", "service_token"])
    again, generated = keystore.resolve(settings(tmp_path), ["secret_pepper"])
    assert generated is None
    assert (again.card_keys, again.secret_pepper, again.service_token) == (
        first.card_keys,
        first.secret_pepper,
        first.service_token,
    )
    mine, _ = keystore.resolve(settings(tmp_path, secret_pepper="my-own-pepper"), ["card_keys"])
    assert (mine.secret_pepper, mine.card_keys) == ("my-own-pepper", first.card_keys)


def _generate(data_dir: str) -> str:
    return orjson.dumps(keystore.load_or_create(Path(data_dir))[0]).decode()


def test_processes_starting_together_agree_on_one_set(tmp_path: Path) -> None:
    with ProcessPoolExecutor(6) as pool:
        seen = set(pool.map(_generate, [str(tmp_path)] * 24))
    assert len(seen) == 1
    assert orjson.loads(seen.pop()) == orjson.loads((tmp_path / "secrets.json").read_bytes())


def test_nothing_is_generated_when_nothing_is_missing(tmp_path: Path) -> None:
    given = settings(tmp_path, database_url=POSTGRES, service_token="a-token-of-mine")
    assert keystore.resolve(given, ["service_token"]) == (given, None)
    assert keystore.resolve(settings(tmp_path), []) == (settings(tmp_path), None)
    assert not (tmp_path / "secrets.json").exists()


def test_on_postgresql_a_process_refuses_to_start_naming_what_to_set(tmp_path: Path) -> None:
    gateway, commerce = processes("gateway"), processes("commerce")
    with pytest.raises(ConfigurationError) as caught:
        with_secrets(settings(tmp_path, database_url=POSTGRES), [gateway, commerce])
    message = str(caught.value)
    for variable in ("PAYCORE_CARD_KEYS", "PAYCORE_SECRET_PEPPER", "PAYCORE_SERVICE_TOKEN"):
        assert variable in message
    assert "PostgreSQL" in message
    assert not (tmp_path / "secrets.json").exists()
    # a context that needs none (the Rinha deployment's payments) starts as before
    payments = processes("payments")
    assert with_secrets(settings(tmp_path, database_url=POSTGRES), [payments])[1] is None


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    keystore.resolve(settings(tmp_path), ["card_keys"])
    os.chmod(tmp_path / "secrets.json", 0o644)
    with pytest.raises(keystore.MissingSecrets, match="chmod 600"):
        keystore.resolve(settings(tmp_path), ["card_keys"])


def test_the_former_built_in_key_and_pepper_no_longer_open_anything(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PAYCORE_CARD_KEYS"):
        Keyring.parse("")
    with pytest.raises(ValueError, match="PAYCORE_SECRET_PEPPER"):
        Hasher("")
    resolved, _ = keystore.resolve(settings(tmp_path), ["card_keys"])
    ring = Keyring.parse(resolved.card_keys)
    nonce = os.urandom(12)

    old_envelope = Sealed("dev", nonce, AESGCM(FORMER_KEY).encrypt(nonce, b"card", b"tx-1"))
    with pytest.raises(CardKeyError):
        ring.open(old_envelope, "tx-1")
    with pytest.raises(CardKeyError):  # nor under the new key's id
        ring.open(Sealed(ring.current, nonce, old_envelope.ciphertext), "tx-1")
    former_hasher = Hasher(FORMER_MATERIAL.decode())
    assert Hasher(resolved.secret_pepper).secret("pcsk_x") != former_hasher.secret("pcsk_x")


def test_the_former_default_service_token_is_refused_and_never_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYCORE_SERVICE_TOKEN", "dev-service-token")
    with pytest.raises(ValidationError, match="public default"):
        Settings(_env_file=None)  # type: ignore[call-arg]
    monkeypatch.delenv("PAYCORE_SERVICE_TOKEN")
    assert Settings(_env_file=None).service_token == ""  # type: ignore[call-arg]
    resolved, _ = keystore.resolve(settings(tmp_path), ["service_token"])
    assert resolved.service_token not in ("", "dev-service-token")


async def test_the_analytics_service_takes_only_the_token_both_sides_resolved(
    tmp_path: Path,
) -> None:
    """The order API (its client) and the analytics service resolve the same token from the
    data dir; the analytics service refuses the former default."""
    commerce = processes("commerce")
    api_side, _ = with_secrets(settings(tmp_path), [commerce])
    worker_side, _ = with_secrets(settings(tmp_path), [commerce])
    assert api_side.service_token == worker_side.service_token

    analytics = analytics_api.AnalyticsApi(
        None,  # type: ignore[arg-type]  # refused before the database is asked
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        worker_side.service_token,
    )
    app = served([(analytics_api.routes, "")], state={"analytics": analytics})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as http:
        for token in ("dev-service-token", ""):
            answer = await http.get("/archive", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401


def test_a_process_whose_contexts_keep_no_cards_never_loads_the_cipher_library(
    tmp_path: Path,
) -> None:
    # The Rinha's payments API: its secrets are resolved (and would be generated) at start, but
    # it seals no card, so `cryptography` (~7 MB of RSS per process) stays out of it.
    build = (
        "import sys\n"
        "from paycore.platform.cli import load_settings\n"
        "from paycore.bootstrap import build_api\n"
        "build_api(load_settings(), ['payments'], root=True)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'cryptography', 'paycore'}))\n"
    )
    env = {
        **os.environ,
        "PAYCORE_DATA_DIR": str(tmp_path),
        "PAYCORE_BROKER_URL": "none",
        "PAYCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'payments.db'}",
        "PAYCORE_PAYMENTS_ACCEPT": "local",
    }
    done = subprocess.run(
        [sys.executable, "-c", build], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "['paycore']"
