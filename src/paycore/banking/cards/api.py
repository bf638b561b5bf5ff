"""Banking's cards over HTTP (mounted at ``/banking``).

For customers (their secret): issue a debit or credit card on one of their accounts (the
number and the CVV are answered this once), read it masked, block and unblock it, change a
credit card's limit, pay its bill, list its authorizations. Another customer's card answers
404, as an unknown one does.

For the card network (the service token, or the operator's admin token): authorize (a hold),
capture (post the hold, all or less), void, read an authorization.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from msgspec import Meta

from paycore.banking.cards.domain import (
    AuthorizationDeclined,
    AuthorizationIdReused,
    CardKind,
    CardStatus,
    CreditLimitInUse,
    CreditLimitRequired,
    CreditLimitTooHigh,
    NotACreditCard,
)
from paycore.banking.cards.network import Network, Presented
from paycore.banking.cards.service import CARD_SETTLEMENT, CREDIT_LINES, CardRules, Cards
from paycore.banking.cards.views import (
    AuthorizationOut,
    AuthorizationPage,
    CardOut,
    NewCardOut,
    authorization_view,
    card_view,
    new_card_view,
)
from paycore.banking.ledger.domain import TransferIdReused, TransferRefused
from paycore.banking.ledger.service import AccountClosed
from paycore.banking.settings import BankingSettings
from paycore.banking.web import AS_CUSTOMER, CUSTOMER_ERRORS, Customer
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.clock import utcnow
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings
from paycore.platform.web.admin import (
    ADMIN_ERRORS,
    AdminDisabled,
    AdminRequired,
    admin_allowed,
)
from paycore.platform.web.bodies import Cents, Input, text
from paycore.platform.web.claims import ANSWER_NOT_KEPT
from paycore.platform.web.credentials import ADMIN_TOKEN, SERVICE_TOKEN
from paycore.platform.web.params import UUID_PATTERN, Page, UuidId
from paycore.platform.web.responses import JSONResponse
from paycore.platform.web.routes import Routes, on_state

routes = Routes("banking cards")


class CardsApi:
    """What the cards' routes need, kept on the app's state (``banking_cards``) by
    ``processes.mount_api``: the use cases and the card network's credentials."""

    def __init__(
        self, cards: Cards, network: Network, *, admin_token: str, service_token: str
    ) -> None:
        self.cards = cards
        self.network = network
        self.admin_token = admin_token
        self.service_token = service_token

    @classmethod
    def wired(cls, db: Database, shared: Settings, bank: dict[str, str]) -> CardsApi:
        """As an API process wires it: the banking settings, the platform's card keys,
        pepper and tokens, the bank's own accounts (by name)."""
        settings = BankingSettings()
        hasher = Hasher(shared.secret_pepper)
        rules = CardRules(
            bin=settings.card_bin,
            years=settings.card_years,
            max_credit_limit=settings.card_max_credit_limit_cents,
        )
        cards = Cards(
            db,
            keyring=Keyring.parse(shared.card_keys),
            hasher=hasher,
            rules=rules,
            credit_lines_id=bank[CREDIT_LINES.name],
        )
        network = Network(
            db,
            hasher=hasher,
            hold_seconds=settings.card_hold_seconds,
            settlement_id=bank[CARD_SETTLEMENT.name],
        )
        return cls(
            cards, network, admin_token=shared.admin_token, service_token=shared.service_token
        )


Api = Annotated[CardsApi, on_state("banking_cards", CardsApi)]


async def _network(request: Request, api: Api) -> None:
    """The card network: ``Authorization: Bearer`` with the service token or the admin token
    (each only if configured)."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    offered = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if admin_allowed(api.service_token, offered) or admin_allowed(api.admin_token, offered):
        return
    if not api.service_token and not api.admin_token:
        raise AdminDisabled(
            "The card network's routes are off: set PAYCORE_SERVICE_TOKEN or "
            "PAYCORE_ADMIN_TOKEN to enable them."
        )
    raise AdminRequired("The service token (or the admin token) is required.")


AS_NETWORK = {"dependencies": [Depends(_network)], "security": (SERVICE_TOKEN, ADMIN_TOKEN)}

AuthorizationId = Annotated[
    str,
    Meta(
        pattern=UUID_PATTERN,
        description="The authorization's id, chosen by the card network (a UUID): the same id "
        "again is the same authorization",
    ),
]

PaymentId = Annotated[
    str,
    Meta(pattern=UUID_PATTERN, description="The payment's transfer id: the same id is one payment"),
]


class CardIssueIn(Input):
    """A card to issue: a credit card with its credit limit, a debit card without one."""

    account_id: Annotated[
        str, Meta(pattern=UUID_PATTERN, description="One of the caller's checking accounts")
    ]
    kind: Literal["debit", "credit"]
    credit_limit: Cents | None = None  # credit cards only


class CardPatch(Input):
    """A credit card's new limit: the difference moves between the bank and the card."""

    credit_limit: Cents


class CardPaymentIn(Input):
    """A payment of a credit card's bill from the checking account it was issued on."""

    amount: Cents
    id: PaymentId | None = None


class CardAuthorizationIn(Input):
    """What the card network presents: the card (number, expiry, CVV), the amount, the
    merchant."""

    id: AuthorizationId
    number: Annotated[str, Meta(pattern=r"^[0-9]{12,19}$", description="The card number")]
    exp_month: Annotated[int, Meta(ge=1, le=12)]
    exp_year: Annotated[int, Meta(ge=2000, le=9999)]
    cvv: Annotated[
        str,
        Meta(pattern=r"^[0-9]{3,4}$", description="Digits, as a string (keeps a leading zero)"),
    ]
    amount: Cents
    merchant: Annotated[str, text(100)]
    currency: Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217")] = "BRL"


class CardCaptureIn(Input):
    """``{}`` captures the whole authorization; ``{"amount": …}`` that much of it."""

    amount: Cents | None = None  # at most the authorized amount; none: all of it


CARD_ERRORS = (*CUSTOMER_ERRORS, NotFound)


def _cents(amount: Cents | None) -> int | None:
    """A plain ``int`` (the ledger's events are encoded by msgspec, which takes no subclass)."""
    return None if amount is None else int(amount)


# --- customers -----------------------------------------------------------------------------


@routes.post(
    "/cards",
    status_code=201,
    response_model=NewCardOut,
    errors=(
        *CARD_ERRORS,
        AccountClosed,
        CreditLimitRequired,
        CreditLimitTooHigh,
        (
            409,
            ANSWER_NOT_KEPT.code,
            "Issued under this Idempotency-Key: the number is not shown again",
        ),
    ),
    summary="Issue a debit or credit card on one of the caller's accounts: its number and CVV "
    "are answered this once (not stored, cached or replayed)",
    **AS_CUSTOMER,
)
async def issue(customer: Customer, body: CardIssueIn, api: Api) -> JSONResponse:
    issued = await api.cards.issue(
        customer.id, body.account_id, CardKind(body.kind), _cents(body.credit_limit), utcnow()
    )
    shown_once = new_card_view(issued.row, issued.number, issued.cvv)
    return JSONResponse(shown_once, status_code=201, headers={"Cache-Control": "no-store"})


@routes.get("/cards", errors=CUSTOMER_ERRORS, summary="The caller's cards, masked", **AS_CUSTOMER)
async def list_cards(customer: Customer, api: Api) -> list[CardOut]:
    return [card_view(row) for row in await api.cards.cards_of(customer.id)]


@routes.get(
    "/cards/{card_id}",
    errors=CARD_ERRORS,
    summary="One of the caller's cards, masked, with what it may still spend",
    **AS_CUSTOMER,
)
async def get_card(customer: Customer, card_id: UuidId, api: Api) -> CardOut:
    return card_view(await api.cards.own_card(customer.id, card_id))


@routes.post(
    "/cards/{card_id}/block",
    errors=CARD_ERRORS,
    summary="Block the card: every authorization from now on is declined",
    **AS_CUSTOMER,
)
async def block(customer: Customer, card_id: UuidId, api: Api) -> CardOut:
    return card_view(await api.cards.set_status(customer.id, card_id, CardStatus.BLOCKED, utcnow()))


@routes.post(
    "/cards/{card_id}/unblock",
    errors=CARD_ERRORS,
    summary="Unblock the card",
    **AS_CUSTOMER,
)
async def unblock(customer: Customer, card_id: UuidId, api: Api) -> CardOut:
    return card_view(await api.cards.set_status(customer.id, card_id, CardStatus.ACTIVE, utcnow()))


@routes.patch(
    "/cards/{card_id}",
    errors=(
        *CARD_ERRORS,
        NotACreditCard,
        CreditLimitTooHigh,
        CreditLimitInUse,
        TransferRefused,
    ),
    summary="Change a credit card's limit (lower: never below what is spent and held)",
    **AS_CUSTOMER,
)
async def change_card(customer: Customer, card_id: UuidId, body: CardPatch, api: Api) -> CardOut:
    row = await api.cards.set_credit_limit(customer.id, card_id, int(body.credit_limit), utcnow())
    return card_view(row)


@routes.post(
    "/cards/{card_id}/payments",
    status_code=201,
    errors=(*CARD_ERRORS, NotACreditCard, TransferRefused, TransferIdReused),
    summary="Pay a credit card's bill from the checking account it was issued on",
    **AS_CUSTOMER,
)
async def pay(customer: Customer, card_id: UuidId, body: CardPaymentIn, api: Api) -> CardOut:
    row = await api.cards.pay(customer.id, card_id, body.id or uuid7(), int(body.amount), utcnow())
    return card_view(row)


@routes.get(
    "/cards/{card_id}/transactions",
    errors=CARD_ERRORS,
    summary="The card's authorizations, oldest first, with what became of each",
    **AS_CUSTOMER,
)
async def transactions(
    customer: Customer,
    card_id: UuidId,
    api: Api,
    page: Page = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuthorizationPage:
    rows = await api.cards.authorizations_of(customer.id, card_id, offset=page * limit, limit=limit)
    now = utcnow()
    return {
        "card_id": card_id,
        "data": [authorization_view(row, now) for row in rows],
        "page": page,
        "limit": limit,
    }


# --- the card network ----------------------------------------------------------------------


@routes.post(
    "/card-authorizations",
    status_code=201,
    errors=(*ADMIN_ERRORS, AuthorizationIdReused),
    summary="Authorize a card payment: approved (the amount held) or declined with the reason; "
    "recorded either way",
    **AS_NETWORK,
)
async def authorize(body: CardAuthorizationIn, api: Api) -> AuthorizationOut:
    asked = Presented(
        id=body.id,
        number=body.number,
        exp_month=body.exp_month,
        exp_year=body.exp_year,
        cvv=body.cvv,
        amount=int(body.amount),
        currency=body.currency,
        merchant=body.merchant,
    )
    now = utcnow()
    return authorization_view(await api.network.authorize(asked, now), now)


@routes.get(
    "/card-authorizations/{authorization_id}",
    errors=(*ADMIN_ERRORS, NotFound),
    summary="An authorization and what became of it",
    **AS_NETWORK,
)
async def get_authorization(authorization_id: UuidId, api: Api) -> AuthorizationOut:
    return authorization_view(await api.network.authorization(authorization_id), utcnow())


@routes.post(
    "/card-authorizations/{authorization_id}/capture",
    errors=(*ADMIN_ERRORS, NotFound, AuthorizationDeclined, TransferRefused, TransferIdReused),
    summary="Capture an authorization: post its hold (the amount given, at most the hold's; "
    "none: all of it), the rest released",
    **AS_NETWORK,
)
async def capture(authorization_id: UuidId, body: CardCaptureIn, api: Api) -> AuthorizationOut:
    now = utcnow()
    row = await api.network.capture(authorization_id, _cents(body.amount), now)
    return authorization_view(row, now)


@routes.post(
    "/card-authorizations/{authorization_id}/void",
    errors=(*ADMIN_ERRORS, NotFound, AuthorizationDeclined, TransferRefused),
    summary="Void an authorization: release its hold",
    **AS_NETWORK,
)
async def void(authorization_id: UuidId, api: Api) -> AuthorizationOut:
    now = utcnow()
    return authorization_view(await api.network.void(authorization_id, now), now)
