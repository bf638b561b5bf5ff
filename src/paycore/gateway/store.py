"""Gateway tables (accounts, the merchant's transactions, the processor's decisions, webhook
deliveries) and their queries. No card number or CVV is ever a column: a transaction keeps the
brand, the last 4 digits, the expiry, the holder's name sealed and keyed fingerprints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.gateway.domain import PENDING
from paycore.platform.cards import CardKeyError, Keyring
from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction

ACTIVE, DISABLED = "active", "disabled"
_HOLDER = "holder:"  # what a sealed holder name is bound to, before its transaction id
DELIVERY_PENDING, DELIVERED, DELIVERY_FAILED = "pending", "delivered", "failed"

accounts = Table(
    "gateway_accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("secret_hint", String(16), nullable=False),
    Column("webhook_url", String(2000)),
    Column("webhook_secret", Text),  # sealed with the keyring, bound to the account id
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

transactions = Table(
    "gateway_transactions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), ForeignKey("gateway_accounts.id"), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("brand", String(20)),
    Column("last4", String(4), nullable=False),
    Column("exp_month", SmallInteger, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("holder", String(100)),  # only rows stored before names were sealed, until sealed
    Column("holder_sealed", Text),  # sealed with the keyring, bound to the transaction id
    Column("fingerprint", String(64)),  # the merchant's own (None on rows before they were)
    Column("platform_fingerprint", String(64), nullable=False),  # the operator's, never shown
    Column("status", String(10), nullable=False),
    Column("error_message", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime()),
    Index("ix_gateway_transactions_account_id", "account_id", "id"),
    Index("ix_gateway_transactions_account_status", "account_id", "status", "id"),
    Index("ix_gateway_transactions_account_updated", "account_id", "updated_at"),
)

decisions = Table(
    "gateway_decisions",
    metadata,
    Column("transaction_id", String(36), primary_key=True),  # one decision per transaction
    Column("account_id", String(36), nullable=False),
    Column("status", String(10), nullable=False),
    Column("error_message", String(200), nullable=False),
    Column("brand", String(20)),
    Column("decided_at", UtcDateTime(), nullable=False),
)

deliveries = Table(
    "gateway_webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("transaction_id", String(36), nullable=False, unique=True),
    Column("url", String(2000), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("claimed_until", UtcDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", String(500)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime()),
    Index("ix_gateway_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_gateway_webhook_deliveries_account", "account_id", "id"),
)


# --- what is written: one typed record per table's row -----------------------------------


@dataclass(frozen=True, slots=True)
class AccountRecord:
    id: str
    name: str
    secret_hash: str
    secret_hint: str
    webhook_url: str | None
    webhook_secret: str | None  # sealed with the keyring, bound to the account id
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AccountChanges:
    """What an operator changes on an account; None leaves a field as it is, except the
    webhook URL, removed with ``clear_webhook``."""

    name: str | None = None
    webhook_url: str | None = None
    clear_webhook: bool = False
    status: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A merchant's transaction: the card's brand, last 4 digits, expiry, holder (sealed) and
    keyed fingerprints (the merchant's own, and the platform's for the operator), never its
    number or CVV."""

    id: str
    account_id: str
    amount_cents: int
    brand: str | None
    last4: str
    exp_month: int
    exp_year: int
    holder: str | None  # in clear: only rows stored before names were sealed (None here)
    holder_sealed: str
    fingerprint: str | None  # keyed by merchant: what the merchant sees
    platform_fingerprint: str  # the same for one card at every merchant: the operator's only
    status: str
    error_message: str
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """The processor's decision on a transaction (one per transaction)."""

    transaction_id: str
    account_id: str
    status: str
    error_message: str
    brand: str | None
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision applied to the merchant's transaction."""

    transaction_id: str
    status: str
    error_message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A webhook delivery queued for a decided transaction."""

    id: str
    account_id: str
    transaction_id: str
    url: str
    body: bytes
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """How a delivery attempt went: the counters and, once settled, its final status; a
    retry gives ``next_attempt_at``."""

    attempts: int
    last_status_code: int | None
    last_error: str | None
    status: str | None = None
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None


def row_of(record: Any) -> dict[str, Any]:
    """A record's values by column name."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


# --- accounts ------------------------------------------------------------------------------


async def insert_account(tx: Transaction, account: AccountRecord) -> None:
    await tx.execute(insert(accounts).values(**row_of(account)))


async def find_account(conn: AsyncConnection, account_id: str) -> AnyRow | None:
    return (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()


async def account_by_secret(conn: AsyncConnection, secret_hash: str) -> AnyRow | None:
    query = select(accounts).where(accounts.c.secret_hash == secret_hash)
    return (await conn.execute(query)).first()


async def list_accounts(conn: AsyncConnection, *, offset: int, limit: int) -> Sequence[AnyRow]:
    query = select(accounts).order_by(accounts.c.id).offset(offset).limit(limit)
    return (await conn.execute(query)).all()


async def update_account(
    tx: Transaction, account_id: str, changes: AccountChanges, at: datetime
) -> AnyRow | None:
    values: dict[str, Any] = {"updated_at": at}
    for name in ("name", "status", "webhook_url"):
        if (value := getattr(changes, name)) is not None:
            values[name] = value
    if changes.clear_webhook:
        values["webhook_url"] = None
    await tx.execute(update(accounts).where(accounts.c.id == account_id).values(**values))
    return await find_account(tx.conn, account_id)


# --- transactions (merchant side) ----------------------------------------------------------


async def find_transaction(
    conn: AsyncConnection, account_id: str, transaction_id: str
) -> AnyRow | None:
    query = select(transactions).where(
        transactions.c.account_id == account_id, transactions.c.id == transaction_id
    )
    return (await conn.execute(query)).first()


async def list_transactions(
    conn: AsyncConnection,
    account_id: str,
    *,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    before: str | None,
    limit: int,
) -> Sequence[AnyRow]:
    """Newest first (ids are time-ordered UUIDv7), ``before`` an id (keyset pagination)."""
    t = transactions.c
    query = select(transactions).where(t.account_id == account_id)
    if status:
        query = query.where(t.status == status)
    if since:
        query = query.where(t.created_at >= since)
    if until:
        query = query.where(t.created_at <= until)
    if before:
        query = query.where(t.id < before)
    return (await conn.execute(query.order_by(t.id.desc()).limit(limit))).all()


async def status_counts(conn: AsyncConnection, account_id: str) -> dict[str, tuple[int, int]]:
    """``status -> (count, amount in cents)`` of the account's transactions."""
    t = transactions.c
    query = (
        select(t.status, func.count(), func.coalesce(func.sum(t.amount_cents), 0))
        .where(t.account_id == account_id)
        .group_by(t.status)
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in await conn.execute(query)}


async def changed_since(
    conn: AsyncConnection, account_id: str, since: datetime, limit: int
) -> Sequence[AnyRow]:
    """The account's transactions created or decided at ``since`` or later, oldest change
    first."""
    t = transactions.c
    query = (
        select(transactions)
        .where(t.account_id == account_id, t.updated_at >= since)
        .order_by(t.updated_at, t.id)
        .limit(limit)
    )
    return (await conn.execute(query)).all()


async def pending_of(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, AnyRow]:
    """Those of ``ids`` that exist, with their account's webhook, by id."""
    t, a = transactions.c, accounts.c
    query = (
        select(t.id, t.account_id, t.status, t.amount_cents, a.webhook_url)
        .join_from(transactions, accounts, t.account_id == a.id)
        .where(t.id.in_(ids))
    )
    return {r.id: r for r in await conn.execute(query)}


async def record_decisions(tx: Transaction, verdicts: Sequence[Verdict]) -> int:
    """Move transactions from pending to their decision; a transaction already decided is
    left alone. Returns how many changed."""
    if not verdicts:
        return 0
    t = transactions.c
    statement = (
        update(transactions)
        .where(t.id == bindparam("tid"), t.status == PENDING)
        .values(
            status=bindparam("new_status"),
            error_message=bindparam("message"),
            decided_at=bindparam("at"),
            updated_at=bindparam("at"),
        )
    )
    params = [
        {"tid": v.transaction_id, "new_status": v.status, "message": v.error_message, "at": v.at}
        for v in verdicts
    ]
    result = await tx.execute(statement.execution_options(synchronize_session=False), params)
    return int(result.rowcount)


def seal_holder(keyring: Keyring, transaction_id: str, name: str) -> str:
    """The stored form of a holder's name: sealed, bound to its transaction."""
    return keyring.seal_text(name, _HOLDER + transaction_id)


def holder_of(keyring: Keyring, row: TransactionRecord | AnyRow) -> str | None:
    """A transaction's holder name: opened (None if the key it was sealed under has been
    dropped), or as a row stored before names were sealed has it."""
    if row.holder_sealed is None:
        return str(row.holder) if row.holder is not None else None
    try:
        return keyring.open_text(row.holder_sealed, _HOLDER + row.id)
    except CardKeyError:
        return None


async def clear_holders(conn: AsyncConnection, limit: int) -> Sequence[AnyRow]:
    """Up to ``limit`` transactions whose holder's name is still in clear: ``(id, holder)``."""
    t = transactions.c
    query = select(t.id, t.holder).where(t.holder.is_not(None)).order_by(t.id).limit(limit)
    return (await conn.execute(query)).all()


async def seal_holders(tx: Transaction, sealed: Sequence[tuple[str, str]]) -> None:
    """Replace clear holder names by their sealed form: ``(transaction id, sealed name)``."""
    if not sealed:
        return
    t = transactions.c
    statement = (
        update(transactions)
        .where(t.id == bindparam("tid"), t.holder.is_not(None))
        .values(holder=None, holder_sealed=bindparam("sealed"))
    )
    params = [{"tid": tid, "sealed": value} for tid, value in sealed]
    await tx.execute(statement.execution_options(synchronize_session=False), params)


# --- decisions (processor side) ------------------------------------------------------------


async def decided(conn: AsyncConnection, ids: Sequence[str]) -> set[str]:
    query = select(decisions.c.transaction_id).where(decisions.c.transaction_id.in_(ids))
    return set((await conn.execute(query)).scalars())


async def insert_decisions(tx: Transaction, records: Sequence[DecisionRecord]) -> None:
    if records:
        await tx.execute(insert(decisions), [row_of(r) for r in records])


# --- webhook deliveries --------------------------------------------------------------------


async def insert_deliveries(tx: Transaction, records: Sequence[DeliveryRecord]) -> None:
    if records:
        await tx.execute(insert(deliveries), [row_of(r) for r in records])


async def claim_deliveries(
    tx: Transaction, now: datetime, lease: timedelta, limit: int
) -> Sequence[AnyRow]:
    """Lease up to ``limit`` due deliveries (pending, next attempt due, not leased by another
    dispatcher) for ``lease``; the outer condition is checked again on each row, so two
    dispatchers never lease the same row."""
    d = deliveries.c
    free = or_(d.claimed_until.is_(None), d.claimed_until < now)
    due = and_(d.status == DELIVERY_PENDING, d.next_attempt_at <= now, free)
    batch = select(d.id).where(due).order_by(d.next_attempt_at).limit(limit)
    statement = (
        update(deliveries)
        .where(d.id.in_(batch.scalar_subquery()), due)
        .values(claimed_until=now + lease)
        .returning(*deliveries.c)
    )
    return (await tx.execute(statement)).all()


async def finish_delivery(tx: Transaction, delivery_id: str, outcome: AttemptOutcome) -> None:
    always = ("attempts", "last_status_code", "last_error")
    values = {k: v for k, v in row_of(outcome).items() if v is not None or k in always}
    await tx.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(claimed_until=None, **values)
    )


async def list_deliveries(
    conn: AsyncConnection,
    account_id: str,
    *,
    transaction_id: str | None,
    status: str | None,
    before: str | None,
    limit: int,
) -> Sequence[AnyRow]:
    d = deliveries.c
    query = select(deliveries).where(d.account_id == account_id)
    if transaction_id:
        query = query.where(d.transaction_id == transaction_id)
    if status:
        query = query.where(d.status == status)
    if before:
        query = query.where(d.id < before)
    return (await conn.execute(query.order_by(d.id.desc()).limit(limit))).all()


async def webhook_secrets(conn: AsyncConnection, account_ids: Sequence[str]) -> dict[str, str]:
    """``account id -> sealed webhook signing secret``."""
    a = accounts.c
    query = select(a.id, a.webhook_secret).where(a.id.in_(account_ids))
    return {r.id: r.webhook_secret for r in await conn.execute(query) if r.webhook_secret}
