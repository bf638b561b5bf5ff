"""Card transactions of the payment gateway (seed 001): brands, the Luhn check and the
processor's decision rules and errors. Standard library and the platform's card facts and error
base only.

:func:`decide` applies the rules in the order SPEC 001 gives, and the first one broken wins:

1. the number is all digits, of a known brand (by IIN range and length) and passes the Luhn
   check, else ``invalid credit card number``;
2. the expiry month is 1..12, else ``invalid expiration month``;
3. the expiry year is not past, else ``invalid expiration year``; a past month of the current
   year is refused too, as ``invalid expiration month`` (the year itself is fine, the month is
   what lies in the past). A card is valid through the last day of its expiry month;
4. the CVV is 3 digits, 4 for American Express, else ``invalid cvv``;
5. the amount is at least 1.00, else ``the amount must be greater than 1``; at most 1000.00,
   else ``you dont have limit for this transaction`` (1.00 and 1000.00 are approved).

The CVV may not be kept once the transaction is decided (PCI DSS), so it is judged where it
arrives (:func:`cvv_valid`, in the API) and only its verdict travels to the processor with the
rest of what it decides on (:class:`CardFacts`); the order of the rules is the same.

Amounts are integer cents throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from paycore.platform import errors
from paycore.platform.cards import brand_of, last4, luhn_valid
from paycore.platform.errors import DomainError

APPROVED: Final = "approved"
REJECTED: Final = "rejected"
PENDING: Final = "pending"
STATUSES: Final = (PENDING, APPROVED, REJECTED)

INVALID_NUMBER: Final = "invalid credit card number"
INVALID_MONTH: Final = "invalid expiration month"
INVALID_YEAR: Final = "invalid expiration year"
INVALID_CVV: Final = "invalid cvv"
AMOUNT_TOO_LOW: Final = "the amount must be greater than 1"
OVER_LIMIT: Final = "you dont have limit for this transaction"

MIN_CENTS: Final = 100
MAX_CENTS: Final = 100_000


class GatewayError(DomainError):
    """A rule of the gateway was broken."""

    code = "gateway-error"


class NotFound(GatewayError):
    """The account, transaction or delivery named is unknown (or not the caller's)."""

    code = "not-found"
    status = 404


class Unauthorized(errors.Unauthorized):
    """No valid account secret (or session) was presented."""

    needed = "A valid account secret is required."


class RetryLater(GatewayError):
    """Refused for now: ``retry_after`` (seconds) says when to try again."""

    status = 429

    def __init__(self, detail: str, retry_after: str) -> None:
        super().__init__(detail, headers={"Retry-After": retry_after})


class RateLimited(RetryLater):
    """Too many requests, or too many bad secrets from one address; retry after a while."""

    code = "rate-limited"


class WebhookUrlNotAllowed(GatewayError):
    """Webhooks may not be sent to this URL (a private or local address, a bad scheme)."""

    code = "webhook-url-not-allowed"
    status = 422


class CrossOrigin(GatewayError):
    """A dashboard login posted from another site."""

    code = "cross-origin"
    status = 403


class CsrfFailed(GatewayError):
    """The dashboard's CSRF token is missing or wrong."""

    code = "csrf-failed"
    status = 403


class TooManyStreams(RetryLater):
    """The account holds as many dashboard streams here as it may; close one and retry."""

    code = "too-many-streams"


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What the processor decides on: the number, the expiry and whether the CVV was valid
    (it travels sealed; the CVV itself never leaves the API)."""

    number: str
    exp_month: int
    exp_year: int
    cvv_ok: bool

    def __repr__(self) -> str:  # never print the number
        return f"CardFacts(brand={brand_of(self.number)!r}, last4={last4(self.number)!r})"


@dataclass(frozen=True, slots=True)
class Card:
    """A card as a merchant submits it (only in the API's memory, for one request)."""

    number: str
    holder: str
    exp_month: int
    exp_year: int
    cvv: str

    def __repr__(self) -> str:  # never print the number or the CVV
        return f"Card(brand={brand_of(self.number)!r}, last4={last4(self.number)!r})"

    def facts(self) -> CardFacts:
        """What the processor needs of it: the CVV judged now, only the verdict kept."""
        return CardFacts(
            self.number, self.exp_month, self.exp_year, cvv_valid(self.number, self.cvv)
        )


def cvv_valid(number: str, cvv: str) -> bool:
    """The CVV rule: 3 digits, 4 for American Express (the card's brand by its number)."""
    length = 4 if brand_of(number) == "amex" else 3
    return len(cvv) == length and cvv.isascii() and cvv.isdigit()


@dataclass(frozen=True, slots=True)
class Decision:
    status: str
    error_message: str

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


def _rejected(message: str) -> Decision:
    return Decision(REJECTED, message)


def decide(card: Card | CardFacts, amount_cents: int, today: date) -> Decision:
    """The processor's verdict on a transaction, rules in SPEC order (see the module doc)."""
    facts = card.facts() if isinstance(card, Card) else card
    if brand_of(facts.number) is None or not luhn_valid(facts.number):
        return _rejected(INVALID_NUMBER)
    if not 1 <= facts.exp_month <= 12:
        return _rejected(INVALID_MONTH)
    if facts.exp_year < today.year:
        return _rejected(INVALID_YEAR)
    if facts.exp_year == today.year and facts.exp_month < today.month:
        return _rejected(INVALID_MONTH)
    if not facts.cvv_ok:
        return _rejected(INVALID_CVV)
    if amount_cents < MIN_CENTS:
        return _rejected(AMOUNT_TOO_LOW)
    if amount_cents > MAX_CENTS:
        return _rejected(OVER_LIMIT)
    return Decision(APPROVED, "")
