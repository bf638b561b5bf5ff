"""Card data protection shared by every context that handles cards.

Card numbers: :func:`brand_of` (IIN ranges and lengths), :func:`luhn_valid`, and :func:`last4`
(all a card may be shown by).

- :class:`Keyring`: AES-256-GCM envelopes tagged with a key id (``kid``). The first key seals,
  every listed key opens, so keys rotate by putting a new key first and dropping the old one
  once nothing sealed with it is left (in flight or in the outbox). The additional data binds
  an envelope to what it belongs to (a transaction id): an envelope copied elsewhere won't open.
- :class:`Hasher`: keyed hashes (HMAC-SHA256 under a pepper, one derived key per purpose) of
  card numbers (fingerprints, which tell nothing without the pepper: per merchant, so one card
  gives each merchant a different one and merchants cannot match their customers; and
  platform-wide, the same at every merchant, for the operator), of account secrets (only the
  hash is stored) and of sessions.

There is no built-in key: an empty key list or pepper is refused. Installations without
configured keys get random ones generated once (:func:`new_keys`, :func:`new_pepper`; see
``paycore.platform.keystore``).
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

NONCE_BYTES: Final = 12
KEY_BYTES: Final = 32

BRANDS: Final = ("visa", "mastercard", "amex", "discover", "diners", "jcb", "elo", "hipercard")


@dataclass(frozen=True, slots=True)
class _Range:
    brand: str
    low: int  # IIN prefix range, both ends included, compared on the first `width` digits
    high: int
    lengths: frozenset[int]
    width: int


def _ranges(brand: str, lengths: tuple[int, ...], *spans: tuple[int, int] | int) -> list[_Range]:
    bounds = [(s, s) if isinstance(s, int) else s for s in spans]
    return [_Range(brand, lo, hi, frozenset(lengths), len(str(lo))) for lo, hi in bounds]


# Elo and Hipercard issue inside ranges that also look like Visa, Mastercard, Discover or
# Diners, so they are tried first.
_ELO_SPANS: Final[tuple[tuple[int, int] | int, ...]] = (
    401178,
    401179,
    431274,
    438935,
    451416,
    457393,
    457631,
    457632,
    504175,
    (506699, 506778),
    (509000, 509999),
    627780,
    636297,
    636368,
    (650031, 650033),
    (650035, 650051),
    (650405, 650439),
    (650485, 650538),
    (650541, 650598),
    (650700, 650718),
    (650720, 650727),
    (650901, 650978),
    (651652, 651679),
    (655000, 655019),
    (655021, 655058),
)
_IIN_TABLE: Final[tuple[_Range, ...]] = (
    *_ranges("elo", (16,), *_ELO_SPANS),
    *_ranges("hipercard", (13, 16, 19), 606282, 637095, 637568, 637599, 637609, 637612),
    *_ranges("hipercard", (19,), 384100, 384140, 384160),
    *_ranges("amex", (15,), 34, 37),
    *_ranges("diners", (14, 15, 16, 17, 18, 19), (300, 305), 3095, 36, 38, 39),
    *_ranges("jcb", (16, 17, 18, 19), (3528, 3589)),
    *_ranges("discover", (16, 17, 18, 19), 6011, (622126, 622925), (644, 649), 65),
    *_ranges("mastercard", (16,), (51, 55), (2221, 2720)),
    *_ranges("visa", (13, 16, 19), 4),
)
# every range starts and ends on the same first digit: look only at the ones it can be
_BY_FIRST_DIGIT: Final = {
    d: tuple(r for r in _IIN_TABLE if str(r.low)[0] == d) for d in "0123456789"
}


def brand_of(number: str) -> str | None:
    """The brand whose IIN range and length fit the number (Luhn not checked), or None."""
    if not number.isascii() or not number.isdigit():
        return None
    size = len(number)
    for r in _BY_FIRST_DIGIT.get(number[:1], ()):
        if size in r.lengths and r.width <= size and r.low <= int(number[: r.width]) <= r.high:
            return r.brand
    return None


def luhn_valid(number: str) -> bool:
    """Whether the digits pass the Luhn (mod 10) check."""
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def last4(number: str) -> str:
    return number[-4:]


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
        """From ``kid1:base64key,kid2:base64key`` (first is current)."""
        if not text.strip():
            raise ValueError("no card keys: set PAYCORE_CARD_KEYS (kid:base64key,…)")
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
        except ValueError as exc:  # a nonce of the wrong size
            raise CardKeyError(f"card envelope is malformed: {exc}") from None

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
        if not pepper:
            raise ValueError("no pepper: set PAYCORE_SECRET_PEPPER")
        material = pepper.encode()
        self._secret_key = hmac.new(material, b"paycore/account-secret", hashlib.sha256).digest()
        self._card_key = hmac.new(material, b"paycore/card-fingerprint", hashlib.sha256).digest()
        self._merchant_card_key = hmac.new(
            material, b"paycore/merchant-card-fingerprint", hashlib.sha256
        ).digest()
        self.session_key = hmac.new(material, b"paycore/dashboard-session", hashlib.sha256).digest()

    def secret(self, secret: str) -> str:
        """The stored form of an account secret."""
        return hmac.new(self._secret_key, secret.encode(), hashlib.sha256).hexdigest()

    def platform_fingerprint(self, number: str) -> str:
        """A card number's keyed fingerprint, the same at every merchant: for the operator
        only (it lets whoever holds it follow one card across merchants)."""
        return hmac.new(self._card_key, number.encode(), hashlib.sha256).hexdigest()

    def merchant_fingerprint(self, account_id: str, number: str) -> str:
        """A card number's keyed fingerprint as one merchant sees it: stable for that merchant,
        unrelated to the one any other merchant (or the platform) sees for the same card."""
        message = account_id.encode() + b"\x00" + number.encode()
        return hmac.new(self._merchant_card_key, message, hashlib.sha256).hexdigest()


def new_keys() -> str:
    """A fresh keyring setting: one random AES-256 key under a random key id."""
    kid = "g" + secrets.token_hex(4)
    return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def new_pepper() -> str:
    """A fresh random pepper (256 bits)."""
    return secrets.token_urlsafe(KEY_BYTES)
