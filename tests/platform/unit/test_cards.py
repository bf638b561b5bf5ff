"""Card envelopes (AES-GCM with key ids, rotation), keyed hashes, secrets and webhook
signatures; and the wire messages that carry the envelopes."""

from __future__ import annotations

import base64
import os

import pytest

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


@pytest.mark.parametrize("nonce", [b"", b"1234", b"n" * 200])
def test_an_envelope_with_a_nonce_of_the_wrong_size_does_not_open(nonce: bytes) -> None:
    ring = Keyring.parse(f"k1:{key()}")
    sealed = ring.seal(b"card", "tx-1")
    with pytest.raises(CardKeyError, match="malformed"):
        ring.open(Sealed(sealed.kid, nonce, sealed.ciphertext), "tx-1")


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
    ring = Keyring.parse(f"k1:{key()}")
    stored = ring.seal_text("whsec_abc", "account-1")
    assert "whsec_abc" not in stored
    assert ring.open_text(stored, "account-1") == "whsec_abc"
    with pytest.raises(CardKeyError):
        ring.open_text(stored, "account-2")
    with pytest.raises(CardKeyError):
        ring.open_text("garbage", "account-1")


def test_keyed_hashes_depend_on_the_pepper_and_the_purpose() -> None:
    a, b = Hasher("pepper-a"), Hasher("pepper-b")
    assert a.platform_fingerprint("4111111111111111") == a.platform_fingerprint("4111111111111111")
    assert a.platform_fingerprint("4111111111111111") != b.platform_fingerprint("4111111111111111")
    assert a.secret("4111111111111111") != a.platform_fingerprint("4111111111111111")
    assert len(a.secret("pcsk_x")) == 64


def test_merchants_get_fingerprints_of_their_own_for_one_card() -> None:
    """One card at two merchants: each sees a stable fingerprint, and the two (and the
    platform's) differ, so merchants comparing notes cannot match a customer (issue 22,
    item 17)."""
    hasher, card = Hasher("pepper"), "4111111111111111"
    ana, bia = (
        hasher.merchant_fingerprint("acc-ana", card),
        hasher.merchant_fingerprint("acc-bia", card),
    )
    assert ana == hasher.merchant_fingerprint("acc-ana", card)
    assert len({ana, bia, hasher.platform_fingerprint(card)}) == 3
    assert ana != hasher.merchant_fingerprint("acc-ana", "4111111111111112")
    assert ana != Hasher("other").merchant_fingerprint("acc-ana", card)
    # the account id and the number cannot be traded against each other
    assert hasher.merchant_fingerprint("acc-1", "23") != hasher.merchant_fingerprint("acc-12", "3")
