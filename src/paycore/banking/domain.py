"""Banking's rules beyond the ledger's: who a customer is (the CPF and its check digits), the
customer's credential, and what each account kind is. Standard library only."""

from __future__ import annotations

import re
import secrets

from paycore.banking.ledger.domain import Limit
from paycore.platform import errors
from paycore.platform.errors import DomainError

CUSTOMER_SECRET_PREFIX = "bk_"  # noqa: S105 - a prefix, not a secret


class InvalidCpf(DomainError):
    """The CPF is not 11 digits with valid check digits."""

    code = "invalid-cpf"
    status = 422


class CustomerExists(DomainError):
    """A customer with this CPF exists already."""

    code = "customer-exists"
    status = 409


class Unauthorized(errors.Unauthorized):
    """A customer credential is required (missing, unknown or malformed)."""

    needed = "A customer credential is required."


def cpf_digits(text: str) -> str:
    """The CPF's 11 digits (``123.456.789-09`` or ``12345678909``), its check digits verified;
    ``InvalidCpf`` otherwise, also for the eleven repeated digits the Receita never issues."""
    parts = _CPF.fullmatch(text)
    if parts is None:
        raise InvalidCpf("a CPF is 11 digits, e.g. 123.456.789-09")
    digits = "".join(parts.groups())
    if digits == digits[0] * 11:
        raise InvalidCpf("a CPF of one repeated digit is not valid")
    if digits[9:] != cpf_check_digits(digits[:9]):
        raise InvalidCpf("the CPF's check digits do not match")
    return digits


_CPF = re.compile(r"([0-9]{3})\.?([0-9]{3})\.?([0-9]{3})-?([0-9]{2})")
"""11 digits, with or without the dots and the dash, each where it goes."""


def cpf_check_digits(base: str) -> str:
    """The two check digits of a CPF's first nine (weights 10..2, then 11..2; mod 11)."""
    first = _check_digit(base, 10)
    return first + _check_digit(base + first, 11)


def _check_digit(digits: str, top: int) -> str:
    total = sum(int(d) * w for d, w in zip(digits, range(top, 1, -1), strict=True))
    rest = total % 11
    return "0" if rest < 2 else str(11 - rest)


def masked_cpf(digits: str) -> str:
    """``***.456.789-**``: the middle six digits, as Brazilian receipts show a CPF."""
    return f"***.{digits[3:6]}.{digits[6:9]}-**"


def new_customer_secret() -> str:
    return CUSTOMER_SECRET_PREFIX + secrets.token_urlsafe(32)


CUSTOMER_ACCOUNT = "customer"
"""A customer's checking account: it may not be overdrawn."""
CUSTOMER_LIMIT = Limit.DEBITS_MUST_NOT_EXCEED_CREDITS
