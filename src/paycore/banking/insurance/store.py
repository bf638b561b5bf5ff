"""The insurance tables and queries, and a quote as answers show it (``QuoteRecord``).

``banking_insurance_quotes``: one row per quote given, never changed: who asked for it, the
insured person (the CPF as its 11 digits) and vehicle, the amounts, each coverage's premium (a
column per coverage of the catalogue: null when not asked for), every other component, and
when it holds. The source of truth a policy is issued from (the cache only serves reads).

``banking_insurance_policies``: one row per quote bought (its ``quote_id`` is unique, and the
policy's id derived from it): the account the premium is charged to, the status, the premium,
the term once issued, the reason once rejected, the refund once cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
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

from paycore.banking.domain import masked_cpf
from paycore.banking.insurance.quote import Coverage, Quote
from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Transaction


def premium_column(coverage: Coverage) -> str:
    return f"premium_{coverage.value}"


quotes = Table(
    "banking_insurance_quotes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("insured_name", String(120), nullable=False),
    Column("insured_cpf", String(11), nullable=False),  # the digits
    Column("vehicle_brand", String(120), nullable=False),
    Column("vehicle_model", String(120), nullable=False),
    Column("vehicle_year", Integer, nullable=False),
    Column("vehicle_plate", String(7), nullable=False),  # ABC1234 or ABC1D23
    Column("insured_amount", BigInteger, nullable=False),  # every amount in centavos
    Column("deductible", BigInteger, nullable=False),
    *(Column(premium_column(c), BigInteger) for c in Coverage),  # null: not asked for
    Column("base", BigInteger, nullable=False),
    Column("deductible_discount", BigInteger, nullable=False),
    Column("net_base", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("interest", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("payment_method", String(16), nullable=False),
    Column("quoted_at", UtcDateTime(), nullable=False),
    Column("valid_until", UtcDateTime(), nullable=False),
    Index("ix_banking_insurance_quotes_customer", "customer_id", "quoted_at"),
)

policies = Table(
    "banking_insurance_policies",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "quote_id",
        String(36),
        ForeignKey("banking_insurance_quotes.id"),
        nullable=False,
        unique=True,
    ),
    Column("customer_id", String(36), ForeignKey("banking_customers.id"), nullable=False),
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("status", String(10), nullable=False),
    Column("premium", BigInteger, nullable=False),  # the quote's total, in centavos
    Column("payment_method", String(16), nullable=False),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("charge_id", String(36)),  # the premium's ledger transfer (issued)
    Column("starts_at", UtcDateTime()),  # issued: the term
    Column("ends_at", UtcDateTime()),
    Column("reason", String(48)),  # rejected: why, a stable code
    Column("detail", String(300)),
    Column("refund", BigInteger),  # cancelled: what came back, in centavos
    Column("refund_id", String(36)),  # its ledger transfer (none for a refund of 0)
    Column("cancelled_at", UtcDateTime()),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_banking_insurance_policies_customer", "customer_id", "requested_at"),
)


class QuoteRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A quote as its answers show it (the insured person's CPF masked), the value the quote
    cache keeps: amounts in centavos; ``premiums`` by coverage, in the catalogue's order."""

    id: str
    customer_id: str
    insured_name: str
    insured_cpf: str  # masked: ***.982.247-**
    vehicle_brand: str
    vehicle_model: str
    vehicle_year: int
    vehicle_plate: str
    insured_amount: int
    deductible: int
    premiums: dict[str, int]
    base: int
    deductible_discount: int
    net_base: int
    tax: int
    interest: int
    total: int
    payment_method: str
    quoted_at: datetime
    valid_until: datetime

    def holds_at(self, moment: datetime) -> bool:
        """Whether a policy may still be asked for with it at ``moment`` (an aware one): the
        quote holds until ``valid_until``, excluded."""
        return moment < self.valid_until


# --- quotes --------------------------------------------------------------------------------


def quote_row(quote_id: str, customer_id: str, priced: Quote) -> dict[str, Any]:
    request = priced.request
    return {
        "id": quote_id,
        "customer_id": customer_id,
        "insured_name": request.insured.name,
        "insured_cpf": request.insured.cpf,
        "vehicle_brand": request.vehicle.brand,
        "vehicle_model": request.vehicle.model,
        "vehicle_year": request.vehicle.year,
        "vehicle_plate": request.vehicle.plate,
        "insured_amount": request.insured_amount,
        "deductible": request.deductible,
        **{premium_column(c): priced.premiums.get(c) for c in Coverage},
        "base": priced.base,
        "deductible_discount": priced.deductible_discount,
        "net_base": priced.net_base,
        "tax": priced.tax,
        "interest": priced.interest,
        "total": priced.total,
        "payment_method": request.payment_method.value,
        "quoted_at": priced.quoted_at,
        "valid_until": priced.valid_until,
    }


def record_of(row: AnyRow | dict[str, Any]) -> QuoteRecord:
    """A quote's row (or the values written) as its record."""
    values = row if isinstance(row, dict) else row._mapping
    premiums = {
        c.value: values[premium_column(c)]
        for c in Coverage
        if values[premium_column(c)] is not None
    }
    return QuoteRecord(
        id=values["id"],
        customer_id=values["customer_id"],
        insured_name=values["insured_name"],
        insured_cpf=masked_cpf(values["insured_cpf"]),
        vehicle_brand=values["vehicle_brand"],
        vehicle_model=values["vehicle_model"],
        vehicle_year=values["vehicle_year"],
        vehicle_plate=values["vehicle_plate"],
        insured_amount=values["insured_amount"],
        deductible=values["deductible"],
        premiums=premiums,
        base=values["base"],
        deductible_discount=values["deductible_discount"],
        net_base=values["net_base"],
        tax=values["tax"],
        interest=values["interest"],
        total=values["total"],
        payment_method=values["payment_method"],
        quoted_at=values["quoted_at"].astimezone(UTC),
        valid_until=values["valid_until"].astimezone(UTC),
    )


async def insert_quote(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(quotes.insert().values(**row))


async def find_quote(conn: AsyncConnection, quote_id: str) -> AnyRow | None:
    return (await conn.execute(select(quotes).where(quotes.c.id == quote_id))).first()


# --- policies ------------------------------------------------------------------------------


async def insert_policy(tx: Transaction, row: dict[str, Any]) -> None:
    await tx.execute(policies.insert().values(**row))


def _with_quote() -> Select[*tuple[Any, ...]]:
    """Policies with what their quote insures: the vehicle and the coverages."""
    return select(
        policies,
        quotes.c.vehicle_brand,
        quotes.c.vehicle_model,
        quotes.c.vehicle_year,
        quotes.c.vehicle_plate,
        quotes.c.insured_amount,
        quotes.c.deductible,
        *(quotes.c[premium_column(c)] for c in Coverage),
    ).join(quotes, quotes.c.id == policies.c.quote_id)


async def find_policy(conn: AsyncConnection, policy_id: str) -> AnyRow | None:
    return (await conn.execute(_with_quote().where(policies.c.id == policy_id))).first()


async def policies_of(conn: AsyncConnection, customer_id: str) -> Sequence[AnyRow]:
    """A customer's policies, oldest request first."""
    query = (
        _with_quote()
        .where(policies.c.customer_id == customer_id)
        .order_by(policies.c.requested_at, policies.c.id)
    )
    return (await conn.execute(query)).all()


async def update_policy(tx: Transaction, policy_id: str, now: datetime, **values: Any) -> None:
    statement = update(policies).where(policies.c.id == policy_id)
    await tx.execute(statement.values(updated_at=now, **values))


def coverages_of_row(row: AnyRow) -> list[str]:
    """The coverages a quote (or a policy read with its quote) covers, in the catalogue's
    order."""
    return [c.value for c in Coverage if getattr(row, premium_column(c)) is not None]
