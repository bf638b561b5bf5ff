"""Pix's rules beyond the codec: which key a customer may register and how many, what the
DICT shows of a key's owner, a charge's txid, location and status, what a payment pays, how
much of it a refund may return, and the identifiers of Pix's messages (the end-to-end id of a
payment, the return id of a refund). Standard library only (and the codec)."""

from __future__ import annotations

import re
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from paycore.banking.ledger.domain import units
from paycore.banking.pix.brcode import BrCode, check_txid
from paycore.banking.pix.emv import BrCodeError
from paycore.banking.pix.keys import InvalidPixKey, KeyKind, PixKey, parse_key
from paycore.platform.errors import DomainError

KEYS_PER_ACCOUNT = 5
"""The most keys one account of a natural person holds (the Central Bank's DICT rule; a legal
person's account holds 20). paycore's customers are persons: each signs up with a CPF."""
BRANCH = "0001"
"""The branch (agência) of every account: paycore is a digital bank with one."""
ACCOUNT_TYPE = "CACC"
"""The ISO 20022 code of a checking account (conta corrente), as the DICT names its type."""
LOCATION_PATH = "/pix/v2/cob/"
"""Where a dynamic charge's location is under the bank's location host."""
LOCATION_ID_LENGTH = 32
STATIC_TXID_LENGTH = 25
"""A generated static txid: the most 62.05 holds."""
DYNAMIC_TXID_LENGTH = 35
"""A generated dynamic txid: the most a charge's txid has."""
DEFAULT_EXPIRY_SECONDS = 86_400
"""A dynamic charge's life when none is asked: a day, as the Central Bank's API Pix has it."""
ID_LENGTH = 32
ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class PixRules:
    """The bank's Pix settings (``BankingSettings.pix_*``): its ISPB (the 8 digits that name a
    participant), the host of its charges' locations, the city its codes carry."""

    ispb: str
    location_host: str
    city: str


# --- errors --------------------------------------------------------------------------------


class PixKeyTaken(DomainError):
    """The Pix key is registered already (to this or another account): a key is unique."""

    code = "pix-key-taken"
    status = 409


class PixKeyLimitReached(DomainError):
    """The account holds the most Pix keys a person's account may (5): delete one first."""

    code = "pix-key-limit-reached"
    status = 409


class CpfNotYours(DomainError):
    """A CPF key is the customer's own CPF, and no other."""

    code = "cpf-not-yours"
    status = 422


class KeyKindMismatch(DomainError):
    """The key given is of another kind than the one asked for."""

    code = "key-kind-mismatch"
    status = 422


class InvalidCharge(DomainError):
    """The charge asked for breaks a rule of its kind (static or dynamic); ``field`` names the
    body's field at fault."""

    code = "invalid-charge"
    status = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", field=field)


class TxidTaken(DomainError):
    """The caller has a charge with this txid already: a txid names one charge."""

    code = "txid-taken"
    status = 409


class UnknownCharge(DomainError):
    """The dynamic code's location is not one of this bank's charges."""

    code = "unknown-charge"
    status = 422


class ChargeExpired(DomainError):
    """The charge's time to be paid has run out."""

    code = "charge-expired"
    status = 422


class ChargeAlreadyPaid(DomainError):
    """The dynamic charge was paid already: it is paid once."""

    code = "charge-already-paid"
    status = 409


class InvalidPayment(DomainError):
    """A payment names what it pays with a BR Code (``br_code``) or a key (``key`` and
    ``amount``): one of the two."""

    code = "invalid-payment"
    status = 422


class AmountRequired(DomainError):
    """The code carries no amount: the payer gives it (``amount``)."""

    code = "amount-required"
    status = 422


class AmountMismatch(DomainError):
    """The amount given is not the one the code or its charge asks for."""

    code = "amount-mismatch"
    status = 422


class InvalidEndToEndId(DomainError):
    """The end-to-end id is not one of this bank's: E, its ISPB, yyyyMMddHHmm (UTC) and 11
    letters or digits, 32 characters."""

    code = "invalid-end-to-end-id"
    status = 422


class EndToEndIdReused(DomainError):
    """The end-to-end id names a payment with other fields (or another payer's)."""

    code = "end-to-end-id-reused"
    status = 409


class InvalidReturnId(DomainError):
    """The return id is not one of this bank's: D, its ISPB, yyyyMMddHHmm (UTC) and 11 letters
    or digits, 32 characters."""

    code = "invalid-return-id"
    status = 422


class ReturnIdReused(DomainError):
    """The return id names a refund with other fields (or of another payment)."""

    code = "return-id-reused"
    status = 409


class RefundExceedsPayment(DomainError):
    """The refund is more than what is left of the payment (what it was less what was
    refunded)."""

    code = "refund-exceeds-payment"
    status = 422


class NotThePayee(DomainError):
    """Only the payment's receiver refunds it."""

    code = "not-the-payee"
    status = 403


# --- keys ----------------------------------------------------------------------------------


def key_to_register(kind: KeyKind, typed: str | None, own_cpf: str) -> PixKey:
    """The key a customer whose CPF is ``own_cpf`` registers as ``kind``: a random key (EVP) is
    generated here and takes none; a CPF key is the customer's own (given or not); any other
    kind takes the key as typed (``parse_key``), which must be of that kind."""
    if kind is KeyKind.EVP:
        if typed is not None:
            raise InvalidPixKey("a random key is generated by the bank: leave `key` out")
        return PixKey(KeyKind.EVP, str(uuid.uuid4()))
    if typed is None:
        if kind is KeyKind.CPF:
            return PixKey(KeyKind.CPF, own_cpf)
        raise InvalidPixKey(f"a {kind.label} key is registered with `key`: the {kind.label}")
    key = parse_key(typed)
    if key.kind is not kind:
        raise KeyKindMismatch(f"{typed!r} is a {key.kind.label} key, not a {kind.label} key")
    if kind is KeyKind.CPF and key.value != own_cpf:
        raise CpfNotYours("a CPF key is the customer's own CPF; this is another CPF")
    return key


def check_room(held: int) -> None:
    """``PixKeyLimitReached`` if an account holding ``held`` keys may take no other."""
    if held >= KEYS_PER_ACCOUNT:
        raise PixKeyLimitReached(
            f"the account holds {held} Pix keys, the most a person's account may "
            f"({KEYS_PER_ACCOUNT}); delete one to register another"
        )


PARTICLES = frozenset({"da", "das", "de", "do", "dos", "e"})
"""The words between a Portuguese name's parts that are not names of their own."""


def masked_name(name: str) -> str:
    """What the DICT shows of a person's name: the first name and the initial of each other
    name (``Maria da Silva Souza`` → ``Maria S. S.``)."""
    first, *rest = name.split() or ["?"]
    initials = [f"{word[0].upper()}." for word in rest if word.lower() not in PARTICLES]
    return " ".join([first, *initials])


def masked_account(account_id: str) -> str:
    """An account's id as the DICT shows it to a payer: its last four characters."""
    return "****" + account_id[-4:]


# --- charges -------------------------------------------------------------------------------


class ChargeKind(StrEnum):
    STATIC = "static"  # a key, maybe an amount: paid any number of times
    DYNAMIC = "dynamic"  # a location: an amount, an expiry, paid once


class ChargeStatus(StrEnum):
    ACTIVE = "active"
    PAID = "paid"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ChargeOrder:
    """A charge as a customer asks for it (amount in centavos)."""

    kind: ChargeKind
    key: str
    amount: int | None = None
    txid: str | None = None
    expires_in: int | None = None


@dataclass(frozen=True, slots=True)
class ChargePlan:
    """What a charge is made of once its rules are met: its txid (given or generated), its
    location (dynamic), its BR Code and when it expires (dynamic)."""

    txid: str
    location: str | None
    br_code: str
    expires_at: datetime | None


def plan_charge(
    order: ChargeOrder, key: str, name: str, rules: PixRules, now: datetime
) -> ChargePlan:
    """The charge ``order`` asks for on ``key`` (as the DICT keeps it), in the name of
    ``name``: a static code (the key, the amount if any, the txid in 62.05) or a dynamic one
    (its location URL on the bank's host; amount required, an expiry). The codec normalizes
    the name and the city; ``InvalidCharge`` or ``BrCodeError`` name what is wrong."""
    dynamic = order.kind is ChargeKind.DYNAMIC
    txid = order.txid or new_txid(DYNAMIC_TXID_LENGTH if dynamic else STATIC_TXID_LENGTH)
    try:
        check_txid(txid, dynamic=dynamic)
    except BrCodeError as exc:
        raise InvalidCharge("txid", str(exc).removeprefix("62.05 ")) from None
    if not dynamic:
        if order.expires_in is not None:
            raise InvalidCharge("expires_in", "a static charge does not expire; leave it out")
        code = BrCode.static(key, name, rules.city, amount=order.amount, txid=txid)
        return ChargePlan(txid, None, code.encode(), None)
    if order.amount is None:
        raise InvalidCharge("amount", "a dynamic charge asks for an amount")
    location = secrets.token_hex(LOCATION_ID_LENGTH // 2)
    url = location_url(rules.location_host, location)
    code = BrCode.dynamic(url, name, rules.city, amount=order.amount)
    expires_at = now + timedelta(seconds=order.expires_in or DEFAULT_EXPIRY_SECONDS)
    return ChargePlan(txid, location, code.encode(), expires_at)


def new_txid(length: int) -> str:
    """A txid no one can guess: ``length`` random letters and digits."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def location_url(host: str, location: str) -> str:
    """A dynamic charge's location URL as its code carries it: without a scheme."""
    return f"{host}{LOCATION_PATH}{location}"


def location_of(url: str, host: str) -> str:
    """The id of this bank's charge a dynamic code's location URL names; ``UnknownCharge`` for
    another bank's location (this bank settles only its own charges)."""
    prefix = f"{host}{LOCATION_PATH}"
    location = url.removeprefix(prefix)
    if location == url or not re.fullmatch(r"[0-9a-f]{32}", location):
        raise UnknownCharge(f"the location {url} is not one of this bank's charges ({prefix}…)")
    return location


def charge_status(expires_at: datetime | None, paid_by: str | None, now: datetime) -> ChargeStatus:
    """A charge's status: a dynamic one is paid once, or expires at ``expires_at``; a static
    one (no expiry) stays active."""
    if paid_by is not None:
        return ChargeStatus.PAID
    if expires_at is not None and now >= expires_at:
        return ChargeStatus.EXPIRED
    return ChargeStatus.ACTIVE


# --- payments ------------------------------------------------------------------------------


def amount_to_pay(asked: int | None, expected: int | None, *, where: str) -> int:
    """What a payment pays: the amount the code or its charge asks for (``expected``, the
    payer's must be the same if given), or the payer's own when there is none. ``where`` says
    whose amount it is, for the message."""
    if expected is None:
        if asked is None:
            raise AmountRequired(f"{where} carries no amount: give `amount`")
        return asked
    if asked is not None and asked != expected:
        raise AmountMismatch(
            f"`amount` is {units(asked)} but {where} asks for {units(expected)}; "
            "leave `amount` out or give that one"
        )
    return expected


def amount_to_refund(paid: int, refunded: int, asked: int | None) -> int:
    """What a refund returns: ``asked``, at most what is left of the payment (``paid`` less
    ``refunded``); all of it when nothing is asked."""
    left = paid - refunded
    if left <= 0:
        raise RefundExceedsPayment(f"the payment of {units(paid)} is refunded in full already")
    if asked is None:
        return left
    if asked > left:
        raise RefundExceedsPayment(
            f"{units(asked)} is more than what is left of the payment: {units(left)} "
            f"of {units(paid)} ({units(refunded)} refunded)"
        )
    return asked


# --- end-to-end and return ids -------------------------------------------------------------

PAYMENT, RETURN = "E", "D"


def new_end_to_end_id(ispb: str, now: datetime) -> str:
    """A payment's end-to-end id: E, the ISPB, the minute (UTC, yyyyMMddHHmm) and 11 random
    letters and digits."""
    return _new_id(PAYMENT, ispb, now)


def new_return_id(ispb: str, now: datetime) -> str:
    """A refund's return id (devolução): D, then as an end-to-end id."""
    return _new_id(RETURN, ispb, now)


def _new_id(prefix: str, ispb: str, now: datetime) -> str:
    stamp = now.astimezone(UTC).strftime("%Y%m%d%H%M")
    return f"{prefix}{ispb}{stamp}{new_txid(11)}"


def check_end_to_end_id(text: str, ispb: str) -> str:
    """``text`` if it is an end-to-end id of this bank (``InvalidEndToEndId`` otherwise)."""
    return _check_id(text, ispb, PAYMENT, "end-to-end id", InvalidEndToEndId)


def check_return_id(text: str, ispb: str) -> str:
    """``text`` if it is a return id of this bank (``InvalidReturnId`` otherwise)."""
    return _check_id(text, ispb, RETURN, "return id", InvalidReturnId)


def _check_id(text: str, ispb: str, prefix: str, what: str, error: type[DomainError]) -> str:
    shape = f"{prefix}, the ISPB (8 digits), yyyyMMddHHmm (UTC) and 11 letters or digits"
    if len(text) != ID_LENGTH:
        raise error(f"{what} {text!r} is {len(text)} characters; it is {ID_LENGTH}: {shape}")
    if text[0] != prefix:
        raise error(f"{what} {text!r} starts with {text[0]!r}; it starts with {prefix}")
    if text[1:9] != ispb:
        raise error(f"{what} {text!r} names ISPB {text[1:9]!r}; this bank's is {ispb}")
    stamp = text[9:21]
    if not (stamp.isascii() and stamp.isdigit()) or _minute(stamp) is None:
        raise error(f"{what} {text!r}: {stamp!r} is not a time as yyyyMMddHHmm (UTC)")
    if not re.fullmatch(r"[A-Za-z0-9]{11}", text[21:]):
        raise error(f"{what} {text!r}: its last 11 characters are letters and digits only")
    return text


def _minute(stamp: str) -> datetime | None:
    try:
        return datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
