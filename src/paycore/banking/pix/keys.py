"""Pix keys (chaves Pix): what kind a key is and whether it is one, as the DICT writes them.

A key is a CPF (its 11 digits), a CNPJ (its 14 digits), an e-mail address, a mobile phone
number in E.164 (``+55``, the two-digit area code, then 8 or 9 digits) or a random key (EVP: a
UUID, hexadecimal with its dashes). ``key_kind`` checks a key as a BR Code carries it;
``parse_key`` also takes what a person types (``123.456.789-09``, ``+55 (61) 91234-5678``,
capitals in an e-mail or a UUID) and gives the key as the DICT keeps it. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from paycore.banking.domain import InvalidCpf, cpf_digits
from paycore.platform.errors import DomainError

MAX_KEY = 77
"""The longest key (an e-mail address): what the BR Code's merchant account template leaves."""


class KeyKind(StrEnum):
    CPF = "cpf"
    CNPJ = "cnpj"
    EMAIL = "email"
    PHONE = "phone"
    EVP = "evp"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    KeyKind.CPF: "CPF",
    KeyKind.CNPJ: "CNPJ",
    KeyKind.EMAIL: "e-mail",
    KeyKind.PHONE: "phone",
    KeyKind.EVP: "random key (EVP)",
}


class InvalidPixKey(DomainError):
    """The text is not a Pix key: a CPF or a CNPJ with valid check digits, an e-mail address, a
    +55 mobile number or a random key (UUID)."""

    code = "invalid-pix-key"
    status = 422


@dataclass(frozen=True, slots=True)
class PixKey:
    kind: KeyKind
    value: str
    """The key as the DICT keeps it and a BR Code carries it."""


def parse_key(text: str) -> PixKey:
    """The key a person typed, as the DICT keeps it: a CPF or a CNPJ without its dots, dash
    and slash, a phone number without spaces, dashes or brackets, an e-mail address or a random
    key in lowercase (both are case-insensitive). ``InvalidPixKey`` says what is wrong."""
    text = text.strip()
    if not text:
        raise InvalidPixKey("the Pix key is empty")
    if "@" in text or _UUID.fullmatch(text):
        value = text.lower()
    elif text.startswith("+"):
        value = re.sub(r"[\s().-]", "", text)
    elif _DOCUMENT.fullmatch(text):
        value = _document_digits(text)
    else:
        value = text
    return PixKey(key_kind(value), value)


def key_kind(key: str) -> KeyKind:
    """The kind of ``key`` as a BR Code carries it (CPF and CNPJ as bare digits, a phone number
    as +55 and digits); ``InvalidPixKey`` naming what is wrong otherwise."""
    if len(key) > MAX_KEY:
        raise InvalidPixKey(f"a Pix key is at most {MAX_KEY} characters; this one is {len(key)}")
    if "@" in key:
        _check_email(key)
        return KeyKind.EMAIL
    if key.startswith("+"):
        _check_phone(key)
        return KeyKind.PHONE
    if _UUID.fullmatch(key):
        return KeyKind.EVP
    if _DOCUMENT.fullmatch(key):
        return _document_kind(key)
    if _UUID_LIKE.fullmatch(key):
        raise InvalidPixKey(
            f"{key!r} is not a random key: a UUID is 8-4-4-4-12 hexadecimal digits, "
            "e.g. 123e4567-e12b-12d1-a456-426655440000"
        )
    raise InvalidPixKey(
        f"{key!r} is not a Pix key: a CPF (11 digits), a CNPJ (14 digits), an e-mail "
        "address, a phone number (+55 and its digits) or a random key (a UUID)"
    )


_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_UUID_LIKE = re.compile(r"[0-9A-Za-z]+(-[0-9A-Za-z]+){4}|[0-9a-fA-F]{32}")
"""Five groups with dashes, or 32 hexadecimal digits: meant as a random key."""
_DOCUMENT = re.compile(r"[0-9][0-9./-]*[0-9]")
"""Digits with the dots, dashes and slash a CPF or a CNPJ is printed with."""


def _document_digits(text: str) -> str:
    return re.sub(r"[./-]", "", text)


def _document_kind(key: str) -> KeyKind:
    digits = _document_digits(key)
    if len(digits) == 11:
        try:
            cpf_digits(digits)
        except InvalidCpf as exc:
            raise InvalidPixKey(f"CPF key {digits}: {exc.detail}") from None
        kind = KeyKind.CPF
    elif len(digits) == 14:
        _check_cnpj(digits)
        kind = KeyKind.CNPJ
    else:
        raise InvalidPixKey(
            f"a key of digits is a CPF (11 digits) or a CNPJ (14 digits); {key} has "
            f"{len(digits)} (a phone key starts with +55)"
        )
    if digits != key:
        raise InvalidPixKey(
            f"a {kind.label} key is written as its digits alone: {digits}, not {key}"
        )
    return kind


def _check_cnpj(digits: str) -> None:
    if digits == digits[0] * 14:
        raise InvalidPixKey(f"CNPJ key {digits}: a CNPJ of one repeated digit is not valid")
    if digits[12:] != cnpj_check_digits(digits[:12]):
        raise InvalidPixKey(f"CNPJ key {digits}: the check digits do not match")


def cnpj_check_digits(base: str) -> str:
    """The two check digits of a CNPJ's first twelve: weights 2..9 from the right, repeating,
    the sum mod 11 (below 2: 0, else 11 minus it); the second over the first 13."""
    first = _cnpj_digit(base)
    return first + _cnpj_digit(base + first)


def _cnpj_digit(digits: str) -> str:
    weights = [2 + i % 8 for i in range(len(digits))]
    total = sum(int(d) * w for d, w in zip(reversed(digits), weights, strict=True))
    rest = total % 11
    return "0" if rest < 2 else str(11 - rest)


def _check_phone(key: str) -> None:
    if not key.startswith("+55"):
        raise InvalidPixKey(f"phone key {key}: a Pix phone key is Brazilian, +55 first")
    national = key[3:]
    if not (national.isascii() and national.isdigit()):
        raise InvalidPixKey(f"phone key {key}: after +55 come digits only, e.g. +5561912345678")
    if len(national) not in (10, 11):
        raise InvalidPixKey(
            f"phone key {key}: after +55 come the 2-digit area code and 8 or 9 digits "
            f"(10 or 11 digits); this has {len(national)}"
        )
    if "0" in national[:2]:
        raise InvalidPixKey(
            f"phone key {key}: {national[:2]} is not an area code (none has a 0 in it)"
        )
    if len(national) == 11 and national[2] != "9":
        raise InvalidPixKey(f"phone key {key}: a 9-digit mobile number starts with 9")


_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+")
_EMAIL = re.compile(
    _LOCAL.pattern + r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
"""An address with a local part of the characters RFC 5322 allows unquoted, and a domain of
at least two labels."""


def _check_email(key: str) -> None:
    if key.count("@") != 1:
        raise InvalidPixKey(f"e-mail key {key!r}: an address has exactly one @")
    local, _, _ = key.partition("@")
    if not _LOCAL.fullmatch(local):
        raise InvalidPixKey(
            f"e-mail key {key!r}: {local!r} before the @ is not an address's local part"
        )
    if not _EMAIL.fullmatch(key):
        raise InvalidPixKey(
            f"e-mail key {key!r}: what follows the @ is not a domain such as example.com"
        )
