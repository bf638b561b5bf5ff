"""Banking's cards, with no database: card numbers (a BIN, random digits, the Luhn check
digit), expiry dates and CVVs; the card kinds and statuses; why an authorization is declined;
what became of an authorization; and the ids of the ledger transfers a card makes.

A debit card spends from its checking account; a credit card from an account of its own
(``card-credit``) that the bank's credit lines fund with its limit. An authorization is a
pending ledger transfer from that account to the bank's card settlement account (a hold); a
capture posts it (all or less), a void or its timeout releases it. Standard library only.
"""

from __future__ import annotations

import calendar
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from paycore.banking.ledger.domain import Kind
from paycore.platform.errors import DomainError

NUMBER_LENGTH: Final = 16
CVV_LENGTH: Final = 3
CREDIT_ACCOUNT: Final = "card-credit"
"""The ledger account kind of a credit card's own account (its limit, less what it spent)."""

NAMESPACE: Final = uuid.UUID("5d9877b8-88f3-47df-9000-00000000ca4d")
"""The namespace of the ledger transfer ids derived from an authorization's id."""


class CardKind(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class CardStatus(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class Decline(StrEnum):
    """Why an authorization is declined: stable codes the card network acts on. The ledger's
    own refusals (``insufficient-funds``, ``account-blocked``, ``account-closed`` …) keep their
    codes."""

    UNKNOWN_CARD = "unknown-card"
    WRONG_EXPIRY = "wrong-expiry"
    WRONG_CVV = "wrong-cvv"
    CARD_EXPIRED = "card-expired"
    CARD_BLOCKED = "card-blocked"


class AuthorizationStatus(StrEnum):
    """What became of an authorization."""

    DECLINED = "declined"
    PENDING = "pending"  # the amount is held
    CAPTURED = "captured"  # posted (all of it or less)
    VOIDED = "voided"
    EXPIRED = "expired"  # not captured in time: the hold was (or is being) released


# --- errors --------------------------------------------------------------------------------


class NotACreditCard(DomainError):
    """The card is a debit card: it has no credit limit."""

    code = "not-a-credit-card"
    status = 409


class CreditLimitRequired(DomainError):
    """A credit card is issued with its credit limit, a debit card without one."""

    code = "credit-limit-required"
    status = 422


class CreditLimitTooHigh(DomainError):
    """The credit limit asked for is above the bank's maximum."""

    code = "credit-limit-too-high"
    status = 422


class CreditLimitInUse(DomainError):
    """The limit cannot come down this far: more of it is spent or held than that leaves."""

    code = "credit-limit-in-use"
    status = 409


class AuthorizationIdReused(DomainError):
    """The authorization id names an authorization with other fields."""

    code = "authorization-id-reused"
    status = 409


class AuthorizationDeclined(DomainError):
    """The authorization was declined: it holds nothing to capture or void."""

    code = "authorization-declined"
    status = 409


# --- numbers, expiry, CVV ------------------------------------------------------------------


def luhn_digit(body: str) -> str:
    """The check digit that makes ``body`` + it pass the Luhn (mod 10) check."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = ord(char) - 48
        if position % 2 == 0:  # doubled once the check digit follows
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str(-total % 10)


def new_number(bin_: str, length: int = NUMBER_LENGTH) -> str:
    """A card number: the BIN, random digits, the Luhn check digit."""
    if not (bin_.isascii() and bin_.isdigit()) or not 6 <= len(bin_) <= length - 2:
        raise ValueError(f"a BIN is 6 to {length - 2} digits, not {bin_!r}")
    body = bin_ + "".join(str(secrets.randbelow(10)) for _ in range(length - len(bin_) - 1))
    return body + luhn_digit(body)


def new_cvv() -> str:
    return f"{secrets.randbelow(10**CVV_LENGTH):0{CVV_LENGTH}d}"


@dataclass(frozen=True, slots=True)
class Expiry:
    """A card's expiry: it is valid through the last day of this month (UTC)."""

    month: int
    year: int

    @classmethod
    def after(cls, now: datetime, years: int) -> Expiry:
        """The expiry of a card issued at ``now``: the same month, ``years`` later."""
        return cls(now.month, now.year + years)

    def passed(self, now: datetime) -> bool:
        last_day = calendar.monthrange(self.year, self.month)[1]
        end = datetime(self.year, self.month, last_day, tzinfo=UTC)
        return now.astimezone(UTC).date() > end.date()


def masked(last4: str) -> str:
    return f"**** **** **** {last4}"


# --- authorizations ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardState:
    """What an authorization is checked against: the card as issued and as it is now."""

    expiry: Expiry
    status: CardStatus


def decline_of(
    card: CardState | None, presented: Expiry, cvv_matches: bool, now: datetime
) -> Decline | None:
    """Why the card may not be charged, in this order: no such card, the expiry or CVV
    presented is not the card's, the card has expired, it is blocked. None: the ledger
    decides (funds, the account's status)."""
    if card is None:
        return Decline.UNKNOWN_CARD
    if presented != card.expiry:
        return Decline.WRONG_EXPIRY
    if not cvv_matches:
        return Decline.WRONG_CVV
    if card.expiry.passed(now):
        return Decline.CARD_EXPIRED
    if card.status is not CardStatus.ACTIVE:
        return Decline.CARD_BLOCKED
    return None


def hold_id(authorization_id: str) -> str:
    """The id of an authorization's pending ledger transfer."""
    return str(uuid.uuid5(NAMESPACE, f"{authorization_id}/hold"))


def capture_id(authorization_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{authorization_id}/capture"))


def void_id(authorization_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{authorization_id}/void"))


def status_of(
    *, approved: bool, resolution: Kind | None, expires_at: datetime | None, now: datetime
) -> AuthorizationStatus:
    """An authorization's status from its outcome and its hold's resolution in the journal
    (a post, a void, an expiry or none): a hold past its time is expired even before the
    ledger writes its release (the ledger refuses to post it already)."""
    if not approved:
        return AuthorizationStatus.DECLINED
    if resolution is Kind.POST:
        return AuthorizationStatus.CAPTURED
    if resolution is Kind.VOID:
        return AuthorizationStatus.VOIDED
    if resolution is Kind.EXPIRE or (expires_at is not None and now >= expires_at):
        return AuthorizationStatus.EXPIRED
    return AuthorizationStatus.PENDING
