"""What the cards' routes answer: a card, masked (its last four digits, brand, expiry, status,
and what it may still spend), a new card with its number and CVV (this once), and
authorizations with what became of them (exact money, ISO times)."""

from __future__ import annotations

from datetime import datetime

from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.banking.cards.domain import CardKind, masked, status_of
from paycore.banking.cards.store import APPROVED
from paycore.banking.ledger.domain import Kind, Limit
from paycore.banking.ledger.store import balance_of
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.responses import Money


class CardOut(TypedDict):
    id: str
    account_id: str  # the checking account it was issued on
    kind: str  # debit or credit
    status: str  # active or blocked
    number: str  # masked: **** **** **** 1234
    last4: str
    brand: str
    exp_month: int
    exp_year: int
    credit_limit: Money | None  # credit cards only
    available: Money  # what it may still spend: its funding account's available balance
    held: Money  # held on its funding account: authorized, not captured yet
    created_at: str


class NewCardOut(CardOut):
    full_number: str  # shown this once: never again, and never stored in clear
    cvv: str  # shown this once: only a keyed hash is stored


class AuthorizationOut(TypedDict):
    id: str
    card_id: str | None  # None: no card has the number presented
    last4: str | None
    merchant: str
    amount: Money
    currency: str
    result: str  # approved, or why it was declined: insufficient-funds, card-blocked …
    status: str  # declined, pending, captured, voided or expired
    captured: Money | None  # what a capture posted (the amount or less)
    authorized_at: str
    expires_at: str | None  # when an uncaptured hold is released
    resolved_at: str | None  # when it was captured, voided or released


class AuthorizationPage(TypedDict):
    card_id: str
    data: list[AuthorizationOut]
    page: int
    limit: int


def card_view(row: AnyRow) -> CardOut:
    limit = Limit(row.balance_limit)
    balance = balance_of(row)
    credit = row.kind == CardKind.CREDIT.value
    return {
        "id": row.id,
        "account_id": row.account_id,
        "kind": row.kind,
        "status": row.status,
        "number": masked(row.last4),
        "last4": row.last4,
        "brand": row.brand,
        "exp_month": row.exp_month,
        "exp_year": row.exp_year,
        "credit_limit": from_cents(row.credit_limit) if credit else None,
        "available": from_cents(balance.available(limit)),
        "held": from_cents(balance.debits_pending),
        "created_at": iso(row.created_at),
    }


def new_card_view(row: AnyRow, number: str, cvv: str) -> NewCardOut:
    return {**card_view(row), "full_number": number, "cvv": cvv}


def authorization_view(row: AnyRow, now: datetime) -> AuthorizationOut:
    resolution = Kind(row.resolution) if row.resolution else None
    status = status_of(
        approved=row.outcome == APPROVED, resolution=resolution, expires_at=row.expires_at, now=now
    )
    return {
        "id": row.id,
        "card_id": row.card_id,
        "last4": row.last4,
        "merchant": row.merchant,
        "amount": from_cents(row.amount),
        "currency": row.currency,
        "result": row.outcome,
        "status": status.value,
        "captured": from_cents(row.resolved_amount) if resolution is Kind.POST else None,
        "authorized_at": iso(row.at),
        "expires_at": iso(row.expires_at) if row.expires_at else None,
        "resolved_at": iso(row.resolved_at) if row.resolved_at else None,
    }
