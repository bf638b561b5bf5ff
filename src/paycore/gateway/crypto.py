"""The gateway's secrets and card protection.

- :class:`Keyring`: AES-256-GCM envelopes tagged with a key id (``kid``). The first key seals,
  every listed key opens, so keys rotate by putting a new key first and dropping the old one
  once nothing sealed with it is left (in flight or in the outbox). The additional data binds
  an envelope to its transaction id: an envelope copied onto another transaction won't open.
- :class:`Hasher`: keyed hashes (HMAC-SHA256 under a pepper, one derived key per purpose) of
  account secrets (only the hash is stored) and of card numbers (the fingerprint: the same card
  gives the same fingerprint, which tells nothing without the pepper).
- :func:`new_secret`: random credentials with a recognisable prefix (``pcsk_`` for account
  secrets, ``whsec_`` for webhook signing secrets).
- :func:`sign_webhook`: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SECRET_PREFIX: Final = "pcsk_"  # noqa: S105 - a prefix, not a secret
WEBHOOK_SECRET_PREFIX: Final = "whsec_"  # noqa: S105
NONCE_BYTES: Final = 12
DEV_KID: Final = "dev"
# Used only when PAYCORE_CARD_KEYS / PAYCORE_SECRET_PEPPER are empty (embedded development
# mode); the bootstrap logs a warning. Anyone can read this line: never rely on it.
_DEV_MATERIAL: Final = b"paycore-development-only-not-a-secret"


class CardKeyError(ValueError):
    """An envelope cannot be opened: unknown key id, or tampered with / wrong transaction."""


@dataclass(frozen=True, slots=True)
class Sealed:
    kid: str
    nonce: bytes
    ciphertext: bytes


class Keyring:
    """AES-GCM keys by id; the first one is current."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        for kid, key in keys:
            if len(key) not in (16, 24, 32):
                raise ValueError(f"card key {kid!r} must be 16, 24 or 32 bytes, not {len(key)}")
        if len({kid for kid, _ in keys}) != len(keys):
            raise ValueError("card key ids must be unique")
        self.current = keys[0][0]
        self._ciphers = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """From ``kid1:base64key,kid2:base64key`` (first is current); empty means the
        development key (see :func:`is_development`)."""
        if not text.strip():
            return cls([(DEV_KID, hashlib.sha256(_DEV_MATERIAL + b"card").digest())])
        keys = []
        for part in text.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep or not kid or not encoded:
                raise ValueError("card keys must look like kid:base64key[,kid:base64key…]")
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ValueError(f"card key {kid!r} is not valid base64") from None
            keys.append((kid, key))
        return cls(keys)

    @property
    def kids(self) -> list[str]:
        return list(self._ciphers)

    def seal(self, plaintext: bytes, bound_to: str) -> Sealed:
        """Encrypt with the current key, bound to ``bound_to`` (the transaction id)."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self.current].encrypt(nonce, plaintext, bound_to.encode())
        return Sealed(self.current, nonce, ciphertext)

    def open(self, sealed: Sealed, bound_to: str) -> bytes:
        """Decrypt with the key the envelope names; :class:`CardKeyError` if impossible."""
        cipher = self._ciphers.get(sealed.kid)
        if cipher is None:
            raise CardKeyError(f"unknown card key id {sealed.kid!r}")
        try:
            return cipher.decrypt(sealed.nonce, sealed.ciphertext, bound_to.encode())
        except InvalidTag:
            raise CardKeyError("card envelope does not authenticate") from None

    def seal_text(self, text: str, bound_to: str) -> str:
        """``seal`` as one storable string: ``kid.nonce.ciphertext`` (base64url)."""
        sealed = self.seal(text.encode(), bound_to)
        return ".".join((sealed.kid, _b64(sealed.nonce), _b64(sealed.ciphertext)))

    def open_text(self, stored: str, bound_to: str) -> str:
        """The inverse of :meth:`seal_text`."""
        kid, _, rest = stored.partition(".")
        nonce, _, ciphertext = rest.partition(".")
        try:
            sealed = Sealed(kid, _unb64(nonce), _unb64(ciphertext))
        except (binascii.Error, ValueError):
            raise CardKeyError("not a sealed value") from None
        return self.open(sealed, bound_to).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Hasher:
    """Keyed hashes under a pepper; each purpose has its own derived key."""

    def __init__(self, pepper: str) -> None:
        material = pepper.encode() if pepper else _DEV_MATERIAL
        self._secret_key = hmac.new(material, b"paycore/account-secret", hashlib.sha256).digest()
        self._card_key = hmac.new(material, b"paycore/card-fingerprint", hashlib.sha256).digest()
        self.session_key = hmac.new(material, b"paycore/dashboard-session", hashlib.sha256).digest()

    def secret(self, secret: str) -> str:
        """The stored form of an account secret."""
        return hmac.new(self._secret_key, secret.encode(), hashlib.sha256).hexdigest()

    def fingerprint(self, number: str) -> str:
        """A stable, keyed fingerprint of a card number."""
        return hmac.new(self._card_key, number.encode(), hashlib.sha256).hexdigest()


def is_development(card_keys: str, pepper: str) -> bool:
    """Whether the insecure development key or pepper is in use."""
    return not card_keys.strip() or not pepper


def new_secret(prefix: str = SECRET_PREFIX) -> str:
    """A fresh random credential: the prefix and 32 random bytes (base64url)."""
    return prefix + secrets.token_urlsafe(32)


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Paycore-Signature`` header value for a webhook body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    expected = sign_webhook(secret, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, fields.get("v1", ""))
