"""Card envelopes (AES-GCM with key ids, rotation), keyed hashes, secrets and webhook
signatures; and the wire messages that carry the envelopes."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from paycore.gateway import messages
from paycore.gateway.crypto import new_secret, sign_webhook, verify_webhook
from paycore.gateway.domain import Card
from paycore.platform.cards import CardKeyError, Hasher, Keyring, Sealed

CARD = Card(number="4111111111111111", holder="Ana Lima", exp_month=12, exp_year=2030, cvv="123")


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_rotation_seals_with_the_first_key_and_opens_with_any() -> None:
    k1, k2 = key(), key()
    old = Keyring.parse(f"k1:{k1}")
    rotated = Keyring.parse(f"k2:{k2},k1:{k1}")
    before = old.seal(b"card", "tx-1")
    after = rotated.seal(b"card", "tx-2")
    assert (before.kid, after.kid) == ("k1", "k2")
    assert rotated.open(before, "tx-1") == b"card"
    assert rotated.open(after, "tx-2") == b"card"
    with pytest.raises(CardKeyError, match="unknown card key id 'k2'"):
        old.open(after, "tx-2")


def test_an_envelope_is_bound_to_its_transaction_and_tamper_evident() -> None:
    ring = Keyring.parse(f"k1:{key()}")
    sealed = ring.seal(b"card", "tx-1")
    with pytest.raises(CardKeyError):
        ring.open(sealed, "tx-2")
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(CardKeyError):
        ring.open(Sealed(sealed.kid, sealed.nonce, flipped), "tx-1")
    assert ring.seal(b"card", "tx-1").nonce != sealed.nonce  # a fresh nonce every time


@pytest.mark.parametrize(
    "setting",
    ["k1", "k1:", ":abc", "k1:not base64!", "k1:" + base64.b64encode(b"short").decode()],
)
def test_bad_key_settings_are_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="card key"):
        Keyring.parse(setting)


def test_duplicate_key_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        Keyring.parse(f"k1:{key()},k1:{key()}")


def test_sealed_text_round_trip() -> None:
    ring = Keyring.parse("")  # the development key
    stored = ring.seal_text("whsec_abc", "account-1")
    assert "whsec_abc" not in stored
    assert ring.open_text(stored, "account-1") == "whsec_abc"
    with pytest.raises(CardKeyError):
        ring.open_text(stored, "account-2")
    with pytest.raises(CardKeyError):
        ring.open_text("garbage", "account-1")


def test_keyed_hashes_depend_on_the_pepper_and_the_purpose() -> None:
    a, b = Hasher("pepper-a"), Hasher("pepper-b")
    assert a.fingerprint("4111111111111111") == a.fingerprint("4111111111111111")
    assert a.fingerprint("4111111111111111") != b.fingerprint("4111111111111111")
    assert a.secret("4111111111111111") != a.fingerprint("4111111111111111")
    assert len(a.secret("pcsk_x")) == 64


def test_secrets_are_random_and_prefixed() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("pcsk_")
    assert len(one) > 40
    assert one != two
    assert new_secret("whsec_").startswith("whsec_")


def test_webhook_signatures() -> None:
    body = b'{"id":"t1","status":"approved","error_message":""}'
    header = sign_webhook("whsec_k", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify_webhook("whsec_k", header, body, now=1_700_000_100)
    assert not verify_webhook("whsec_k", header, body + b" ", now=1_700_000_100)
    assert not verify_webhook("whsec_other", header, body, now=1_700_000_100)
    assert not verify_webhook("whsec_k", header, body, now=1_700_001_000)  # too old: a replay
    assert not verify_webhook("whsec_k", "v1=abc", body, now=1_700_000_000)


def test_the_transaction_message_carries_the_card_only_sealed() -> None:
    ring = Keyring.parse(f"k1:{key()}")
    sealed = messages.seal_card(ring, "tx-1", CARD)
    body = messages.encode_transaction("tx-1", "acc-1", 1050, sealed)
    assert b"4111111111111111" not in body
    assert b"Ana Lima" not in body
    decoded = messages.decode_transaction(body)
    assert (decoded.id, decoded.account_id, decoded.amount_cents) == ("tx-1", "acc-1", 1050)
    assert messages.open_card(ring, decoded) == CARD
    # moved onto another transaction, the envelope no longer opens
    moved = orjson.loads(body) | {"id": "tx-2"}
    with pytest.raises(CardKeyError):
        messages.open_card(ring, messages.decode_transaction(orjson.dumps(moved)))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"version":2}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":1,"card":"x"}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":0,'
        b'"card":{"kid":"k","nonce":"AA==","ciphertext":"AA=="}}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":1.5,'
        b'"card":{"kid":"k","nonce":"AA==","ciphertext":"AA=="}}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":1,'
        b'"card":{"kid":"k","nonce":"!!","ciphertext":"AA=="}}',
        b'{"version":1,"id":"' + b"t" * 37 + b'","account_id":"a","amount_cents":1,'
        b'"card":{"kid":"k","nonce":"AA==","ciphertext":"AA=="}}',
    ],
)
def test_malformed_transaction_messages_are_refused(body: bytes) -> None:
    with pytest.raises(messages.BadMessage):
        messages.decode_transaction(body)


def test_result_messages_have_the_seed_shape() -> None:
    body = messages.encode_result("t1", "rejected", "invalid cvv")
    assert orjson.loads(body) == {"id": "t1", "status": "rejected", "error_message": "invalid cvv"}
    assert messages.decode_result(body).error_message == "invalid cvv"
    with pytest.raises(messages.BadMessage):
        messages.decode_result(b'{"id":"t1","status":"pending","error_message":""}')
