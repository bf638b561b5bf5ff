"""What merchants see: transactions, accounts, webhook deliveries and counters as the API, the
dashboard and its live stream answer them (exact money, ISO times)."""

from __future__ import annotations

from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.gateway import store
from paycore.gateway.domain import STATUSES
from paycore.platform.cards import Keyring
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database
from paycore.platform.web.responses import Money


class CardOut(TypedDict):
    brand: str | None
    last4: str
    exp_month: int
    exp_year: int
    holder: str | None  # None once the key it was sealed under is dropped
    fingerprint: str | None  # the merchant's own; None on transactions stored before


class TransactionOut(TypedDict):
    id: str
    account_id: str
    amount: Money
    status: str
    error_message: str
    card: CardOut
    created_at: str
    decided_at: str | None


class TransactionPage(TypedDict):
    data: list[TransactionOut]
    next_cursor: str | None


class AccountOut(TypedDict):
    id: str
    name: str
    status: str
    webhook_url: str | None
    secret_hint: str
    created_at: str
    updated_at: str


class NewAccountOut(AccountOut):
    secret: str  # shown this once; only a keyed hash is stored
    webhook_secret: str  # signs webhook deliveries; shown this once


class DeliveryOut(TypedDict):
    id: str
    transaction_id: str
    url: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None


class DeliveryPage(TypedDict):
    data: list[DeliveryOut]
    next_cursor: str | None


class StatusFigures(TypedDict):
    count: int
    amount: Money


Stats = dict[str, StatusFigures]


def transaction_view(t: store.TransactionRecord | AnyRow, keyring: Keyring) -> TransactionOut:
    """A transaction as merchants see it (the API, the dashboard, its live stream), from the
    record just written or a row read back; the holder's name opened with ``keyring``."""
    return {
        "id": t.id,
        "account_id": t.account_id,
        "amount": from_cents(t.amount_cents),
        "status": t.status,
        "error_message": t.error_message,
        "card": {
            "brand": t.brand,
            "last4": t.last4,
            "exp_month": t.exp_month,
            "exp_year": t.exp_year,
            "holder": store.holder_of(keyring, t),
            "fingerprint": t.fingerprint,
        },
        "created_at": iso(t.created_at),
        "decided_at": iso(t.decided_at) if t.decided_at else None,
    }


def account_view(row: AnyRow) -> AccountOut:
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "webhook_url": row.webhook_url,
        "secret_hint": row.secret_hint,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def delivery_view(row: AnyRow) -> DeliveryOut:
    return {
        "id": row.id,
        "transaction_id": row.transaction_id,
        "url": row.url,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "delivered_at": iso(row.delivered_at) if row.delivered_at else None,
    }


async def account_stats(db: Database, account_id: str) -> Stats:
    """Count and amount of the account's transactions by status."""
    async with db.connect() as conn:
        counts = await store.status_counts(conn, account_id)
    figures = {s: counts.get(s, (0, 0)) for s in STATUSES}
    return {s: {"count": n, "amount": from_cents(cents)} for s, (n, cents) in figures.items()}
