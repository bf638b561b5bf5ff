"""Pix's tables and queries.

``banking_pix_keys``: the DICT of this bank, one row per registered key, the key (as the DICT
keeps it) its primary key: a key is unique across the platform, and the unique index decides a
race. A deleted key's row is deleted (the key is free again).

``banking_pix_charges``: one row per charge, never changed: its txid (unique per customer), the
key and account it is paid into, the amount, its BR Code, and for a dynamic charge its location
(unique, random) and expiry. Whether it was paid is read from the payments.

``banking_pix_payments``: one row per settled payment, keyed by its end-to-end id, never
changed: payer and payee (their accounts, and their names as they were), the amount, the key
and txid paid to, the dynamic charge it paid (unique: a charge is paid once, the index decides),
the ledger transfer and a hash of the request (to tell a replay from a reuse of the id).

``banking_pix_refunds``: one row per refund (devolução), keyed by its return id: the payment,
the amount, the ledger transfer, a hash of the request. What is left of a payment is its amount
less the sum of its refunds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    cast,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction

keys = Table(
    "banking_pix_keys",
    metadata,
    Column("key", String(77), primary_key=True),  # as the DICT keeps it: unique
    Column("kind", String(5), nullable=False),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_banking_pix_keys_account", "account_id"),
    Index("ix_banking_pix_keys_customer", "customer_id", "created_at"),
)

charges = Table(
    "banking_pix_charges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("txid", String(35), nullable=False),
    Column("kind", String(7), nullable=False),
    Column("key", String(77), nullable=False),  # the key it was made on
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("amount", BigInteger),  # centavos; none: the payer gives it (static only)
    Column("location", String(32), unique=True),  # dynamic only: random, unguessable
    Column("br_code", String(512), nullable=False),
    Column("expires_at", UtcDateTime()),  # dynamic only
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("customer_id", "txid", name="uq_banking_pix_charges_txid"),  # per receiver
)

payments = Table(
    "banking_pix_payments",
    metadata,
    Column("end_to_end_id", String(32), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("transfer_id", String(64), nullable=False, unique=True),
    Column("payer_customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("payer_account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("payer_name", String(200), nullable=False),
    Column("payee_customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("payee_account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("payee_name", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("key", String(77)),  # the key paid to (a dynamic charge's: the one it was made on)
    Column("txid", String(35)),  # a static code's 62.05, or the dynamic charge's txid
    Column("charge_id", String(36), ForeignKey("banking_pix_charges.id"), unique=True),
    Column("settled_at", UtcDateTime(), nullable=False),
)

refunds = Table(
    "banking_pix_refunds",
    metadata,
    Column("id", String(32), primary_key=True),  # the return id
    Column(
        "end_to_end_id",
        String(32),
        ForeignKey("banking_pix_payments.end_to_end_id"),
        nullable=False,
    ),
    Column("request_hash", String(64), nullable=False),
    Column("transfer_id", String(64), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_banking_pix_refunds_payment", "end_to_end_id", "at"),
)


# --- keys ----------------------------------------------------------------------------------


async def insert_key(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(keys.insert().values(**row))


async def find_key(conn: AsyncConnection, key: str) -> AnyRow | None:
    return (await conn.execute(select(keys).where(keys.c.key == key))).first()


async def keys_of(conn: AsyncConnection, customer_id: str) -> Sequence[AnyRow]:
    query = (
        select(keys)
        .where(keys.c.customer_id == customer_id)
        .order_by(keys.c.created_at, keys.c.key)
    )
    return (await conn.execute(query)).all()


async def count_keys(conn: AsyncConnection, account_id: str) -> int:
    query = select(func.count()).select_from(keys).where(keys.c.account_id == account_id)
    return int((await conn.execute(query)).scalar_one())


async def delete_key(tx: Transaction, key: str) -> None:
    await tx.execute(keys.delete().where(keys.c.key == key))


# --- charges -------------------------------------------------------------------------------


def _with_payment() -> Any:
    """Charges with the end-to-end id of the payment that paid them, if any."""
    return select(charges, payments.c.end_to_end_id.label("paid_by")).outerjoin(
        payments, payments.c.charge_id == charges.c.id
    )


async def insert_charge(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(charges.insert().values(**row))


async def own_charge(conn: AsyncConnection, customer_id: str, txid: str) -> AnyRow | None:
    query = _with_payment().where(charges.c.customer_id == customer_id, charges.c.txid == txid)
    return (await conn.execute(query)).first()


async def charge_at(conn: AsyncConnection, location: str) -> AnyRow | None:
    """The dynamic charge at ``location``, with its payment if it was paid."""
    query = _with_payment().where(charges.c.location == location)
    return (await conn.execute(query)).first()


# --- payments and refunds ------------------------------------------------------------------


def _refunded() -> Any:
    """What was refunded of the payment, in centavos (an integer: PostgreSQL's sum of bigints
    is a numeric)."""
    return (
        select(cast(func.coalesce(func.sum(refunds.c.amount), 0), BigInteger))
        .where(refunds.c.end_to_end_id == payments.c.end_to_end_id)
        .scalar_subquery()
        .label("refunded")
    )


async def insert_payment(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(payments.insert().values(**row))


async def find_payment(conn: AsyncConnection, end_to_end_id: str) -> AnyRow | None:
    """The payment with what was refunded of it (``refunded``, centavos)."""
    query = select(payments, _refunded()).where(payments.c.end_to_end_id == end_to_end_id)
    return (await conn.execute(query)).first()


async def insert_refund(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(refunds.insert().values(**row))


async def find_refund(conn: AsyncConnection, return_id: str) -> AnyRow | None:
    return (await conn.execute(select(refunds).where(refunds.c.id == return_id))).first()


async def refunds_of(conn: AsyncConnection, end_to_end_id: str) -> Sequence[AnyRow]:
    query = (
        select(refunds)
        .where(refunds.c.end_to_end_id == end_to_end_id)
        .order_by(refunds.c.at, refunds.c.id)
    )
    return (await conn.execute(query)).all()
