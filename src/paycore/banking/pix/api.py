"""Pix's HTTP API for customers (under ``/banking/pix``; docs/banking-pix.md): keys, charges
with their QR images, payments and refunds. Every route takes the customer's secret; a
customer reaches only their own keys, charges and accounts (another's answers 404, as an
unknown one does), and the payments they paid or received."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Request, Response
from msgspec import Meta

from paycore.banking.ledger.domain import Reason, TransferIdReused, TransferRefused
from paycore.banking.ledger.service import AccountClosed
from paycore.banking.pix import qr
from paycore.banking.pix.domain import (
    AmountMismatch,
    AmountRequired,
    ChargeAlreadyPaid,
    ChargeExpired,
    ChargeKind,
    ChargeOrder,
    CpfNotYours,
    EndToEndIdReused,
    InvalidCharge,
    InvalidEndToEndId,
    InvalidPayment,
    InvalidReturnId,
    KeyKindMismatch,
    NotThePayee,
    PixKeyLimitReached,
    PixKeyTaken,
    PixRules,
    RefundExceedsPayment,
    ReturnIdReused,
    TxidTaken,
    UnknownCharge,
)
from paycore.banking.pix.emv import BrCodeError
from paycore.banking.pix.keys import InvalidPixKey, KeyKind
from paycore.banking.pix.payments import PaymentOrder, Payments
from paycore.banking.pix.service import Pix
from paycore.banking.pix.views import (
    PixChargeOut,
    PixKeyLookupOut,
    PixKeyOut,
    PixPaymentOut,
    PixRefundOut,
    PixRefundPage,
    charge_view,
    key_view,
    lookup_view,
    payment_view,
    refund_page,
    refund_view,
)
from paycore.banking.settings import BankingSettings
from paycore.banking.web import AS_CUSTOMER, CUSTOMER_ERRORS, Customer
from paycore.platform.clock import utcnow
from paycore.platform.errors import NotFound
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database
from paycore.platform.web.bodies import Cents, Input, text
from paycore.platform.web.params import UUID_PATTERN
from paycore.platform.web.routes import Routes, on_state

routes = Routes("banking pix")


class PixApi:
    """What Pix's routes need, kept on the app's state (``banking_pix``) by
    ``processes.mount_api``: the use cases and the bank's Pix rules."""

    def __init__(self, pix: Pix, payments: Payments, rules: PixRules) -> None:
        self.pix = pix
        self.payments = payments
        self.rules = rules

    @classmethod
    def wired(cls, db: Database) -> PixApi:
        """As an API process wires it, from the banking settings (``PAYCORE_BANKING_PIX_*``)."""
        settings = BankingSettings()
        rules = PixRules(
            ispb=settings.pix_ispb,
            location_host=settings.pix_location_host,
            city=settings.pix_city,
        )
        return cls(Pix(db, rules), Payments(db, rules), rules)


Api = Annotated[PixApi, on_state("banking_pix", PixApi)]

AccountId = Annotated[str, Meta(pattern=UUID_PATTERN, description="One of the caller's accounts")]
TypedKey = Annotated[
    str,
    text(
        100,
        description="A Pix key as typed: a CPF (123.456.789-09), a CNPJ, an e-mail address, "
        "a +55 phone number or a random key",
    ),
]
KeyPath = Annotated[
    str, Path(pattern="^[ -~]{1,100}$", description="A Pix key as typed (printable ASCII)")
]
Txid = Annotated[
    str, Path(pattern="^[A-Za-z0-9]{1,35}$", description="A charge's txid (letters and digits)")
]
E2E_PATTERN = "^E[0-9]{20}[A-Za-z0-9]{11}$"
EndToEndPath = Annotated[
    str, Path(pattern=E2E_PATTERN, description="A payment's end-to-end id (E…, 32 characters)")
]
PixId = Annotated[str, Meta(min_length=1, max_length=64)]


class PixKeyIn(Input):
    """A key to register: a random key (``evp``) is generated, a CPF key is the caller's own
    CPF (``key`` may be left out), any other kind is given in ``key``."""

    account_id: AccountId
    kind: Literal["cpf", "cnpj", "email", "phone", "evp"]
    key: TypedKey | None = None


class PixChargeIn(Input):
    """A charge on one of the caller's keys: ``static`` (an optional amount and txid of at most
    25 characters) or ``dynamic`` (an amount, ``expires_in`` seconds, 86400 if left out, and a
    txid of 26 to 35 characters); a txid left out is generated."""

    kind: Literal["static", "dynamic"]
    key: TypedKey
    amount: Cents | None = None
    txid: Annotated[str, Meta(pattern="^[A-Za-z0-9]{1,35}$")] | None = None
    expires_in: Annotated[int, Meta(ge=1, le=31_536_000)] | None = None


class PixPaymentIn(Input):
    """A payment from one of the caller's accounts: ``br_code`` (the "copia e cola" code; an
    ``amount`` only if the code has none) or ``key`` and ``amount``; ``end_to_end_id`` (E, the
    bank's ISPB, yyyyMMddHHmm UTC, 11 letters or digits): the same one again is one payment."""

    from_account_id: AccountId
    br_code: Annotated[str, Meta(min_length=1, max_length=1024)] | None = None
    key: TypedKey | None = None
    amount: Cents | None = None
    end_to_end_id: PixId | None = None


class PixRefundIn(Input):
    """A refund of all that is left of the payment (``{}``) or of ``amount``; ``id`` (D, the
    bank's ISPB, yyyyMMddHHmm UTC, 11 letters or digits): the same one again is one refund."""

    amount: Cents | None = None
    id: PixId | None = None


def _cents(amount: Cents | None) -> int | None:
    """A plain ``int`` (events are encoded by msgspec, which takes no subclass)."""
    return None if amount is None else int(amount)


REFUSALS = {
    Reason.INSUFFICIENT_FUNDS: "The paying account's available balance is below the amount",
    Reason.ACCOUNT_CLOSED: "An account of the transfer is closed",
    Reason.ACCOUNT_BLOCKED: "An account of the transfer is blocked",
    Reason.ACCOUNTS_MUST_BE_DIFFERENT: "The payment is from an account to itself",
}


def _refusals(*reasons: Reason) -> tuple[tuple[int, str, str], ...]:
    """The ledger's refusals (``TransferRefused``) a route may answer, for the document."""
    return tuple((TransferRefused.status, r.value, REFUSALS[r]) for r in reasons)


MONEY_REFUSALS = _refusals(Reason.INSUFFICIENT_FUNDS, Reason.ACCOUNT_CLOSED, Reason.ACCOUNT_BLOCKED)
OWN_ERRORS = (*CUSTOMER_ERRORS, NotFound)


# --- keys ----------------------------------------------------------------------------------


@routes.post(
    "/pix/keys",
    status_code=201,
    errors=(
        *OWN_ERRORS,
        AccountClosed,
        InvalidPixKey,
        KeyKindMismatch,
        CpfNotYours,
        PixKeyTaken,
        PixKeyLimitReached,
    ),
    summary="Register a Pix key to one of the caller's open accounts (5 an account at most)",
    **AS_CUSTOMER,
)
async def register_key(customer: Customer, body: PixKeyIn, api: Api) -> PixKeyOut:
    row = await api.pix.register_key(
        customer, body.account_id, KeyKind(body.kind), body.key, utcnow()
    )
    return key_view(row)


@routes.get("/pix/keys", errors=CUSTOMER_ERRORS, summary="The caller's Pix keys", **AS_CUSTOMER)
async def list_keys(customer: Customer, api: Api) -> list[PixKeyOut]:
    return [key_view(row) for row in await api.pix.keys_of(customer.id)]


@routes.get(
    "/pix/keys/{key:path}",
    errors=(*OWN_ERRORS, InvalidPixKey),
    summary="Look any Pix key up: its owner's name and account, masked, and the bank's ISPB",
    **AS_CUSTOMER,
)
async def lookup_key(customer: Customer, key: KeyPath, api: Api) -> PixKeyLookupOut:
    owner = await api.pix.lookup(key)
    return lookup_view(api.rules, owner.key, owner.name)


@routes.delete(
    "/pix/keys/{key:path}",
    errors=(*OWN_ERRORS, InvalidPixKey),
    summary="Delete one of the caller's Pix keys (it is free again)",
    **AS_CUSTOMER,
)
async def delete_key(customer: Customer, key: KeyPath, api: Api) -> PixKeyOut:
    return key_view(await api.pix.delete_key(customer.id, key))


# --- charges -------------------------------------------------------------------------------


@routes.post(
    "/pix/charges",
    status_code=201,
    errors=(*OWN_ERRORS, AccountClosed, InvalidPixKey, InvalidCharge, BrCodeError, TxidTaken),
    summary="Create a static or dynamic charge on one of the caller's keys: its txid, its "
    '"copia e cola" code and its QR images',
    **AS_CUSTOMER,
)
async def create_charge(
    customer: Customer, body: PixChargeIn, request: Request, api: Api
) -> PixChargeOut:
    order = ChargeOrder(
        kind=ChargeKind(body.kind),
        key=body.key,
        amount=_cents(body.amount),
        txid=body.txid,
        expires_in=body.expires_in,
    )
    return _charge(request, api, await api.pix.create_charge(customer, order, utcnow()))


@routes.get(
    "/pix/charges/{txid}",
    errors=OWN_ERRORS,
    summary="One of the caller's charges, with its status",
    **AS_CUSTOMER,
)
async def get_charge(customer: Customer, txid: Txid, request: Request, api: Api) -> PixChargeOut:
    return _charge(request, api, await api.pix.own_charge(customer.id, txid))


def _charge(request: Request, api: PixApi, row: AnyRow) -> PixChargeOut:
    images = tuple(
        request.url_for(name, txid=row.txid).path for name in ("pix_charge_png", "pix_charge_svg")
    )
    return charge_view(row, api.rules.location_host, (images[0], images[1]), utcnow())


def _image(media_type: str) -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    content = {media_type: binary if media_type == "image/png" else {"schema": {"type": "string"}}}
    return {
        "response_class": Response,
        "responses": {200: {"description": "The charge's QR code", "content": content}},
    }


@routes.get(
    "/pix/charges/{txid}/qr.png",
    errors=OWN_ERRORS,
    summary="One of the caller's charges as a QR code, PNG (error correction level M)",
    **_image("image/png"),
    **AS_CUSTOMER,
)
async def pix_charge_png(customer: Customer, txid: Txid, api: Api) -> Response:
    row = await api.pix.own_charge(customer.id, txid)
    return Response(qr.png(row.br_code), media_type="image/png", headers=PRIVATE)


@routes.get(
    "/pix/charges/{txid}/qr.svg",
    errors=OWN_ERRORS,
    summary="One of the caller's charges as a QR code, SVG",
    **_image("image/svg+xml"),
    **AS_CUSTOMER,
)
async def pix_charge_svg(customer: Customer, txid: Txid, api: Api) -> Response:
    row = await api.pix.own_charge(customer.id, txid)
    return Response(qr.svg(row.br_code), media_type="image/svg+xml", headers=PRIVATE)


PRIVATE = {"Cache-Control": "private, no-cache"}
"""The images are the caller's: no shared cache keeps them."""


# --- payments and refunds ------------------------------------------------------------------


@routes.post(
    "/pix/payments",
    status_code=201,
    errors=(
        *OWN_ERRORS,
        InvalidPayment,
        BrCodeError,
        InvalidPixKey,
        UnknownCharge,
        ChargeExpired,
        ChargeAlreadyPaid,
        AmountRequired,
        AmountMismatch,
        InvalidEndToEndId,
        EndToEndIdReused,
        TransferIdReused,
        *MONEY_REFUSALS,
        *_refusals(Reason.ACCOUNTS_MUST_BE_DIFFERENT),
    ),
    summary="Pay by a BR Code or a key and an amount from one of the caller's accounts: "
    "settled at once (the same end_to_end_id again is one payment)",
    **AS_CUSTOMER,
)
async def pay(customer: Customer, body: PixPaymentIn, api: Api) -> PixPaymentOut:
    order = PaymentOrder(
        from_account_id=body.from_account_id,
        br_code=body.br_code,
        key=body.key,
        amount=_cents(body.amount),
        end_to_end_id=body.end_to_end_id,
    )
    row = await api.payments.pay(customer, order, utcnow())
    return payment_view(api.rules, row, customer.id)


@routes.get(
    "/pix/payments/{end_to_end_id}",
    errors=OWN_ERRORS,
    summary="A payment the caller paid or received (the other party masked)",
    **AS_CUSTOMER,
)
async def get_payment(customer: Customer, end_to_end_id: EndToEndPath, api: Api) -> PixPaymentOut:
    row = await api.payments.payment_of(customer.id, end_to_end_id)
    return payment_view(api.rules, row, customer.id)


@routes.post(
    "/pix/payments/{end_to_end_id}/refunds",
    status_code=201,
    errors=(
        *OWN_ERRORS,
        NotThePayee,
        InvalidReturnId,
        ReturnIdReused,
        RefundExceedsPayment,
        TransferIdReused,
        *MONEY_REFUSALS,
    ),
    summary="Refund (devolução) all or part of what is left of a payment the caller received",
    **AS_CUSTOMER,
)
async def refund(
    customer: Customer, end_to_end_id: EndToEndPath, body: PixRefundIn, api: Api
) -> PixRefundOut:
    row = await api.payments.refund(
        customer.id, end_to_end_id, _cents(body.amount), body.id, utcnow()
    )
    return refund_view(row)


@routes.get(
    "/pix/payments/{end_to_end_id}/refunds",
    errors=OWN_ERRORS,
    summary="A payment's refunds, oldest first, with what is refunded in all",
    **AS_CUSTOMER,
)
async def list_refunds(customer: Customer, end_to_end_id: EndToEndPath, api: Api) -> PixRefundPage:
    payment, refunds = await api.payments.refunds_of(customer.id, end_to_end_id)
    return refund_page(payment, refunds)
