"""The payments table and its queries. One row per correlationId: received, then pinned to a
processor with the ``requestedAt`` sent to it, then processed (the processor holds it). Where
API instances dispatch their own payments (``accept=local``) each row names its ``owner``, and
the processors' health, which only one instance may ask for, is shared in ``payments_health``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from paycore.payments.domain import Health, Payment, Totals
from paycore.platform.persistence.batch import ByKey, Lookup
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
    Column("owner", String(48)),  # the API instance dispatching it (accept=local), else null
    Index("ix_payments_requested", "requested_at_ms"),
)
RECEIVED = (
    "correlation_id",
    "amount_cents",
    "received_at_ms",
    "processed",
    "owner",
    "processor",
    "requested_at_ms",
)
"""The columns of a payment when it is received (pinned at once where the router knows where
it goes, ``accept=local``)."""

leases = Table(
    "payments_leases",
    metadata,
    Column("role", String(64), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)
DISPATCHER = "dispatcher"
HEALTH_POLLER = "health-poller"

health = Table(
    "payments_health",
    metadata,
    Column("processor", String(16), primary_key=True),
    Column("failing", Boolean, nullable=False),
    Column("min_response_ms", BigInteger, nullable=False),
    Column("checked_at_ms", BigInteger, nullable=False),
)


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
    records = [
        (p.correlation_id, p.amount_cents, at, False, None, None, None) for p, at in received
    ]
    new = dict(
        await tx.insert_new(
            payments,
            ("correlation_id",),
            RECEIVED,
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


async def unfinished(conn: AsyncConnection, owner: str | None = None) -> list[Pending]:
    """Every payment not yet processed (of ``owner`` only, if given), oldest first, with its
    pin if it has one."""
    query = (
        select(
            payments.c.correlation_id,
            payments.c.amount_cents,
            payments.c.processor,
            payments.c.requested_at_ms,
        )
        .where(payments.c.processed.is_(False))
        .order_by(payments.c.received_at_ms)
    )
    if owner is not None:
        query = query.where(payments.c.owner == owner)
    rows = await conn.execute(query)
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


def lookup(engine: AsyncEngine) -> Lookup:
    """``await found(correlation_ids)``: those of them this database holds."""
    return Lookup(engine, payments.c.correlation_id)


def processed_marks(engine: AsyncEngine) -> ByKey:
    """``await marks(correlation_ids)``: those payments are processed (a processor holds them),
    each call one commit on a connection of its own, not waited to disk (``synced=False``). A
    mark a machine crash loses leaves its payment unfinished: the dispatcher that recovers it
    asks the same processor again with the same ``requestedAt``, which answers that it holds
    it, and the mark is made again."""
    return ByKey(engine, payments.c.correlation_id, {"processed": True}, synced=False)


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


async def claim_lease(
    tx: Transaction, holder: str, now_ms: int, ttl_ms: int, role: str = DISPATCHER
) -> bool:
    """Take or renew a lease (the dispatcher's by default): granted when free, expired, or
    already ours."""
    renewed = await tx.execute(
        update(leases)
        .where(
            leases.c.role == role,
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
        [(role, holder, now_ms + ttl_ms)],
        returning=("role",),
    )
    return bool(created)


async def release_lease(tx: Transaction, holder: str, role: str = DISPATCHER) -> None:
    await tx.execute(
        update(leases)
        .where(leases.c.role == role, leases.c.holder == holder)
        .values(expires_at_ms=0)
    )


async def save_health(tx: Transaction, reports: Mapping[str, Health], at_ms: int) -> None:
    """The processors' latest health reports, for the instances that do not ask themselves."""
    await tx.execute(delete(health).where(health.c.processor.in_(list(reports))))
    if reports:
        await tx.execute(
            insert(health),
            [
                {
                    "processor": name,
                    "failing": report.failing,
                    "min_response_ms": report.min_response_ms,
                    "checked_at_ms": at_ms,
                }
                for name, report in reports.items()
            ],
        )


async def last_health(conn: AsyncConnection) -> dict[str, tuple[Health, int]]:
    """Each processor's latest shared report and when it was asked (epoch ms)."""
    rows = await conn.execute(
        select(
            health.c.processor, health.c.failing, health.c.min_response_ms, health.c.checked_at_ms
        )
    )
    return {name: (Health(bool(failing), int(ms)), int(at)) for name, failing, ms, at in rows}
