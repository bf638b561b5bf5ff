"""The cards' tables and queries.

``banking_cards``: one row per card. The number is kept only sealed (AES-GCM, bound to the
card's id: an envelope copied onto another card does not open), with its keyed fingerprint
(to find the card an authorization presents) and its last four digits; the CVV only as a
keyed hash bound to the card. The status and the credit limit change in place.

``banking_card_authorizations``: append-only, one row per authorization asked for, approved
(with its hold, a pending ledger transfer) or declined (with the reason). What became of a
hold (captured, voided, expired) is read from the journal, never written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from paycore.banking.ledger.store import SUMS, accounts, balances, entries
from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction

cards = Table(
    "banking_cards",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    # the account it spends from: the checking account (debit) or its own (credit)
    Column("funding_account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("status", String(8), nullable=False),
    Column("number_sealed", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("last4", String(4), nullable=False),
    Column("brand", String(16), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("cvv_hash", String(64), nullable=False),
    Column("credit_limit", BigInteger),  # credit cards only, in cents
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_banking_cards_customer", "customer_id", "created_at"),
)

authorizations = Table(
    "banking_card_authorizations",
    metadata,
    Column("id", String(36), primary_key=True),  # chosen by the card network
    Column("card_id", String(36), ForeignKey("banking_cards.id")),  # none: an unknown card
    Column("request_hash", String(64), nullable=False),  # keyed: tells a replay from a reuse
    Column("merchant", String(100), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("outcome", String(48), nullable=False),  # approved, or why it was declined
    Column("hold_id", String(64), unique=True),  # the pending ledger transfer (approved)
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_banking_card_authorizations_card", "card_id", "at"),
)
APPROVED = "approved"


# --- cards ---------------------------------------------------------------------------------


async def insert_card(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(cards.insert().values(**row))


def _with_funding() -> Select[*tuple[Any, ...]]:
    """Cards with their funding account's status, limit and balance sums."""
    return (
        select(
            cards,
            accounts.c.status.label("account_status"),
            accounts.c.balance_limit,
            *(balances.c[name] for name in SUMS),
        )
        .join(accounts, accounts.c.id == cards.c.funding_account_id)
        .join(balances, balances.c.account_id == cards.c.funding_account_id)
    )


async def find_card(conn: AsyncConnection, card_id: str) -> AnyRow | None:
    return (await conn.execute(_with_funding().where(cards.c.id == card_id))).first()


async def card_by_fingerprint(conn: AsyncConnection, fingerprint: str) -> AnyRow | None:
    query = select(cards).where(cards.c.fingerprint == fingerprint)
    return (await conn.execute(query)).first()


async def cards_of(conn: AsyncConnection, customer_id: str) -> Sequence[AnyRow]:
    query = (
        _with_funding()
        .where(cards.c.customer_id == customer_id)
        .order_by(cards.c.created_at, cards.c.id)
    )
    return (await conn.execute(query)).all()


async def update_card(tx: Transaction, card_id: str, now: datetime, **values: Any) -> None:
    await tx.execute(update(cards).where(cards.c.id == card_id).values(updated_at=now, **values))


# --- authorizations ------------------------------------------------------------------------


async def insert_authorization(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(authorizations.insert().values(**row))


def _with_hold() -> Select[*tuple[Any, ...]]:
    """Authorizations with their hold's expiry and how the journal resolved it (if it did)."""
    hold = entries.alias("hold")
    resolution = entries.alias("resolution")
    return (
        select(
            authorizations,
            cards.c.customer_id,
            cards.c.last4,
            hold.c.expires_at,
            resolution.c.kind.label("resolution"),
            resolution.c.amount.label("resolved_amount"),
            resolution.c.at.label("resolved_at"),
        )
        .outerjoin(cards, cards.c.id == authorizations.c.card_id)
        .outerjoin(hold, hold.c.id == authorizations.c.hold_id)
        .outerjoin(resolution, resolution.c.pending_id == authorizations.c.hold_id)
    )


async def find_authorization(conn: AsyncConnection, authorization_id: str) -> AnyRow | None:
    query = _with_hold().where(authorizations.c.id == authorization_id)
    return (await conn.execute(query)).first()


async def authorizations_of(
    conn: AsyncConnection, card_id: str, *, offset: int, limit: int
) -> Sequence[AnyRow]:
    """A card's authorizations, oldest first."""
    query = (
        _with_hold()
        .where(authorizations.c.card_id == card_id)
        .order_by(authorizations.c.at, authorizations.c.id)
        .offset(offset)
        .limit(limit)
    )
    return (await conn.execute(query)).all()
