"""The payments table and its queries. One row per correlationId: received, then pinned to a
processor with the ``requestedAt`` sent to it, then processed (the processor holds it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    String,
    Table,
    and_,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from paycore.payments.domain import Payment, Totals
from paycore.platform.persistence.db import metadata
from paycore.platform.persistence.uow import Transaction

payments = Table(
    "payments",
    metadata,
    Column("correlation_id", String(36), primary_key=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("processor", String(16)),
    Column("requested_at_ms", BigInteger),
    Column("processed", Boolean, nullable=False, default=False),
    Index("ix_payments_requested", "requested_at_ms"),
)

leases = Table(
    "payments_leases",
    metadata,
    Column("role", String(32), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)
DISPATCHER = "dispatcher"


@dataclass(slots=True)
class Pending:
    """A payment the worker still has to get stored by a processor."""

    correlation_id: str
    amount_cents: int
    processor: str | None = None
    requested_at_ms: int | None = None
    attempt: int = 0


async def insert_received(
    tx: Transaction, received: Sequence[tuple[Payment, int]]
) -> list[Pending]:
    """Record received payments once each; returns those that were new."""
    if not received:
        return []
    records = [(p.correlation_id, p.amount_cents, at, False) for p, at in received]
    new = dict(
        await tx.insert_new(
            payments,
            ("correlation_id",),
            _RECEIVED_COLUMNS,
            records,
            returning=("correlation_id", "amount_cents"),
        )
    )
    # in the order received (SQLite does not promise to return rows in the order inserted)
    return [
        Pending(p.correlation_id, new.pop(p.correlation_id))
        for p, _ in received
        if p.correlation_id in new
    ]


_RECEIVED_COLUMNS = ("correlation_id", "amount_cents", "received_at_ms", "processed")


async def unfinished(conn: AsyncConnection) -> list[Pending]:
    """Every payment not yet processed, oldest first, with its pin if it has one."""
    rows = await conn.execute(
        select(
            payments.c.correlation_id,
            payments.c.amount_cents,
            payments.c.processor,
            payments.c.requested_at_ms,
        )
        .where(payments.c.processed.is_(False))
        .order_by(payments.c.received_at_ms)
    )
    return [Pending(*row) for row in rows]


async def pin(
    tx: Transaction, correlation_ids: Sequence[str], processor: str, at_ms: int
) -> set[str]:
    """Pin unprocessed payments to ``processor`` with the ``requestedAt`` about to be sent;
    returns the ids actually pinned (a purged or already processed payment is not)."""
    if not correlation_ids:
        return set()
    rows = await tx.execute(
        update(payments)
        .where(payments.c.correlation_id.in_(correlation_ids), payments.c.processed.is_(False))
        .values(processor=processor, requested_at_ms=at_ms)
        .returning(payments.c.correlation_id)
    )
    return {row[0] for row in rows}


async def mark_processed(tx: Transaction, correlation_ids: Sequence[str]) -> None:
    if correlation_ids:
        await tx.execute(
            update(payments)
            .where(payments.c.correlation_id.in_(correlation_ids))
            .values(processed=True)
        )


async def totals(
    conn: AsyncConnection, start_ms: int | None, end_ms: int | None
) -> dict[str, Totals]:
    """Processed payments per processor whose ``requestedAt`` is within the inclusive window."""
    conditions: list[ColumnElement[bool]] = [payments.c.processed.is_(True)]
    if start_ms is not None:
        conditions.append(payments.c.requested_at_ms >= start_ms)
    if end_ms is not None:
        conditions.append(payments.c.requested_at_ms <= end_ms)
    rows = await conn.execute(
        select(payments.c.processor, func.count(), func.sum(payments.c.amount_cents))
        .where(and_(*conditions))
        .group_by(payments.c.processor)
    )
    return {name: Totals(int(count), int(amount or 0)) for name, count, amount in rows}


async def purge(tx: Transaction) -> None:
    await tx.execute(delete(payments))


async def claim_lease(tx: Transaction, holder: str, now_ms: int, ttl_ms: int) -> bool:
    """Take or renew the dispatcher's lease: granted when free, expired, or already ours."""
    renewed = await tx.execute(
        update(leases)
        .where(
            leases.c.role == DISPATCHER,
            (leases.c.holder == holder) | (leases.c.expires_at_ms < now_ms),
        )
        .values(holder=holder, expires_at_ms=now_ms + ttl_ms)
    )
    if renewed.rowcount:
        return True
    created = await tx.insert_new(
        leases,
        ("role",),
        ("role", "holder", "expires_at_ms"),
        [(DISPATCHER, holder, now_ms + ttl_ms)],
        returning=("role",),
    )
    return bool(created)


async def release_lease(tx: Transaction, holder: str) -> None:
    await tx.execute(
        update(leases)
        .where(leases.c.role == DISPATCHER, leases.c.holder == holder)
        .values(expires_at_ms=0)
    )
