"""Banking's tables beyond the ledger's: customers, the transfers customers ask for (accepted
over HTTP, applied by the ledger worker) and why the ledger refused one. Like the journal,
both transfer tables are append-only: a request's status is read from the journal (applied)
or from its refusal (rejected), never written over."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    any_,
    bindparam,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking.ledger.store import accounts, entries
from paycore.platform.persistence.db import AnyRow, UtcDateTime, among, metadata
from paycore.platform.persistence.uow import Transaction

customers = Table(
    "banking_customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("cpf", String(11), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("secret_hint", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

requests = Table(
    "banking_transfer_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("debit_account_id", String(36), nullable=False),
    Column("credit_account_id", String(36), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("description", String(140), nullable=False),
    Column("accepted_at", UtcDateTime(), nullable=False),
    Index("ix_banking_transfer_requests_customer", "customer_id", "accepted_at"),
)
REQUEST_COLUMNS = tuple(c.name for c in requests.c)

rejections = Table(
    "banking_rejections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("reason", String(48), nullable=False),
    Column("detail", String(300), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)


# --- customers -----------------------------------------------------------------------------


async def insert_customer(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(customers.insert().values(**row))


async def customer_by_cpf(conn: AsyncConnection, cpf: str) -> AnyRow | None:
    return (await conn.execute(select(customers).where(customers.c.cpf == cpf))).first()


async def customer_by_secret(conn: AsyncConnection, secret_hash: str) -> AnyRow | None:
    query = select(customers).where(customers.c.secret_hash == secret_hash)
    return (await conn.execute(query)).first()


PAYER = (
    select(customers.c.id, accounts.c.id, accounts.c.currency)
    .select_from(customers)
    .outerjoin(
        accounts,
        (accounts.c.id == bindparam("account_id")) & (accounts.c.customer_id == customers.c.id),
    )
    .where(customers.c.secret_hash == bindparam("secret_hash"))
)
"""The customer holding a secret and, if it is theirs, the account (its id and currency;
both None otherwise): one read for a transfer request (a ``Read``, on its hot path)."""

PAYERS = (
    select(customers.c.secret_hash, accounts.c.id, customers.c.id, accounts.c.currency)
    .select_from(customers)
    .outerjoin(
        accounts,
        (accounts.c.customer_id == customers.c.id)
        & (accounts.c.id == any_(bindparam("account_ids", type_=ARRAY(String)))),
    )
    .where(customers.c.secret_hash == any_(bindparam("secret_hashes", type_=ARRAY(String))))
)
"""``PAYER`` for many requests at once, on PostgreSQL: each customer holding one of the
secrets (by their hash), once per account of ``account_ids`` that is theirs, or once with
None for the account and currency when none is."""


async def find_customer(conn: AsyncConnection, customer_id: str) -> AnyRow | None:
    return (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()


# --- transfer requests ---------------------------------------------------------------------


async def find_request(conn: AsyncConnection, transfer_id: str) -> AnyRow | None:
    """The request with what became of it: ``seq``/``at`` of its journal entry, or the
    ``reason``/``detail`` of its refusal (neither: not applied yet)."""
    query = (
        select(
            requests,
            entries.c.seq,
            entries.c.at.label("posted_at"),
            rejections.c.reason,
            rejections.c.detail,
            rejections.c.at.label("rejected_at"),
        )
        .outerjoin(entries, entries.c.id == requests.c.id)
        .outerjoin(rejections, rejections.c.id == requests.c.id)
        .where(requests.c.id == transfer_id)
    )
    return (await conn.execute(query)).first()


async def refused_among(conn: AsyncConnection, transfer_ids: Sequence[str]) -> set[str]:
    """The transfers among ``transfer_ids`` the ledger refused before."""
    if not transfer_ids:
        return set()
    query = select(rejections.c.id).where(among(conn, rejections.c.id, transfer_ids))
    return set((await conn.execute(query)).scalars())


async def insert_rejections(
    tx: Transaction, rows: Sequence[tuple[str, str, str, datetime]]
) -> None:
    """Why the ledger refused these transfers (one refused before keeps its first reason)."""
    if rows:
        columns = ("id", "reason", "detail", "at")
        await tx.insert_new(rejections, ("id",), columns, rows, returning=("id",))
