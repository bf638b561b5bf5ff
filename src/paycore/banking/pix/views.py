"""What Pix's routes answer: a customer's keys, what the DICT shows of any key (the owner's
name and account masked: never their CPF, full name or balance), charges with their code and
status, payments as the payer or the payee sees them (the other party masked), refunds (exact
money, ISO times)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.banking.pix.domain import (
    ACCOUNT_TYPE,
    BRANCH,
    PixRules,
    charge_status,
    location_url,
    masked_account,
    masked_name,
)
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.responses import Money


class PixKeyOut(TypedDict):
    key: str  # as the DICT keeps it: a CPF's digits, +55…, lowercase e-mail or random key
    kind: str  # cpf, cnpj, email, phone or evp
    account_id: str
    created_at: str


class PixAccountRef(TypedDict):
    """An account as Pix names it: the bank (ISPB), the branch, the account (its id, or its
    last four characters when it is not the caller's) and the account's type."""

    name: str  # the holder's, masked when it is not the caller
    ispb: str
    branch: str
    account: str
    account_type: str  # CACC: a checking account


class PixKeyLookupOut(TypedDict):
    key: str
    kind: str
    owner: PixAccountRef  # masked: first name and initials, the account's last four characters


class PixChargeOut(TypedDict):
    txid: str
    kind: str  # static (paid any number of times) or dynamic (paid once, expires)
    status: str  # active, paid (dynamic) or expired (dynamic)
    key: str
    account_id: str
    amount: Money | None  # none: the payer gives it (static only)
    br_code: str  # the "copia e cola" payload
    location: str | None  # dynamic: the location URL the code carries
    expires_at: str | None  # dynamic
    paid_by: str | None  # dynamic: the end-to-end id of the payment that paid it
    created_at: str
    qr_png: str  # the QR code's image, for the charge's owner
    qr_svg: str


class PixPaymentOut(TypedDict):
    end_to_end_id: str
    role: str  # payer or payee: which side the caller is on
    status: str  # settled, partially-refunded or refunded
    amount: Money
    refunded: Money
    currency: str
    key: str  # the key paid to
    txid: str | None
    payer: PixAccountRef
    payee: PixAccountRef
    settled_at: str


class PixRefundOut(TypedDict):
    id: str  # the return id (D…)
    end_to_end_id: str
    amount: Money
    at: str


class PixRefundPage(TypedDict):
    end_to_end_id: str
    amount: Money  # the payment's
    refunded: Money
    data: list[PixRefundOut]


def key_view(row: AnyRow) -> PixKeyOut:
    return {
        "key": row.key,
        "kind": row.kind,
        "account_id": row.account_id,
        "created_at": iso(row.created_at),
    }


def account_ref(rules: PixRules, name: str, account_id: str, *, own: bool) -> PixAccountRef:
    return {
        "name": name if own else masked_name(name),
        "ispb": rules.ispb,
        "branch": BRANCH,
        "account": account_id if own else masked_account(account_id),
        "account_type": ACCOUNT_TYPE,
    }


def lookup_view(rules: PixRules, key: AnyRow, name: str) -> PixKeyLookupOut:
    return {
        "key": key.key,
        "kind": key.kind,
        "owner": account_ref(rules, name, key.account_id, own=False),
    }


def charge_view(
    row: AnyRow, location_host: str, qr: tuple[str, str], now: datetime
) -> PixChargeOut:
    """``qr``: the paths of the charge's PNG and SVG images."""
    location = location_url(location_host, row.location) if row.location else None
    return {
        "txid": row.txid,
        "kind": row.kind,
        "status": charge_status(row.expires_at, row.paid_by, now).value,
        "key": row.key,
        "account_id": row.account_id,
        "amount": None if row.amount is None else from_cents(row.amount),
        "br_code": row.br_code,
        "location": location,
        "expires_at": iso(row.expires_at) if row.expires_at else None,
        "paid_by": row.paid_by,
        "created_at": iso(row.created_at),
        "qr_png": qr[0],
        "qr_svg": qr[1],
    }


def payment_view(rules: PixRules, row: AnyRow, customer_id: str) -> PixPaymentOut:
    """The payment as ``customer_id`` (its payer or payee) sees it: their own side whole, the
    other party masked."""
    payer = row.payer_customer_id == customer_id
    payee = row.payee_customer_id == customer_id
    status = "settled"
    if row.refunded:
        status = "refunded" if row.refunded == row.amount else "partially-refunded"
    return {
        "end_to_end_id": row.end_to_end_id,
        "role": "payer" if payer else "payee",
        "status": status,
        "amount": from_cents(row.amount),
        "refunded": from_cents(row.refunded),
        "currency": "BRL",
        "key": row.key,
        "txid": row.txid,
        "payer": account_ref(rules, row.payer_name, row.payer_account_id, own=payer),
        "payee": account_ref(rules, row.payee_name, row.payee_account_id, own=payee),
        "settled_at": iso(row.settled_at),
    }


def refund_view(row: AnyRow) -> PixRefundOut:
    return {
        "id": row.id,
        "end_to_end_id": row.end_to_end_id,
        "amount": from_cents(row.amount),
        "at": iso(row.at),
    }


def refund_page(payment: AnyRow, refunds: Sequence[AnyRow]) -> PixRefundPage:
    return {
        "end_to_end_id": payment.end_to_end_id,
        "amount": from_cents(payment.amount),
        "refunded": from_cents(payment.refunded),
        "data": [refund_view(r) for r in refunds],
    }
