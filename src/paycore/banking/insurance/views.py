"""What the insurance routes answer: a quote with every component of its premium, and a
policy with its status, term and refund (exact money from integer centavos, ISO times; the
insured person's CPF masked)."""

from __future__ import annotations

from datetime import datetime

from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.banking.insurance.store import QuoteRecord, coverages_of_row
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.responses import Money

CURRENCY = "BRL"


class InsuredOut(TypedDict):
    name: str
    cpf: str  # masked: ***.982.247-**


class VehicleOut(TypedDict):
    brand: str
    model: str
    year: int
    plate: str  # ABC1234 or ABC1D23


class QuoteOut(TypedDict):
    id: str
    status: str  # valid (a policy may be asked for with it) or expired
    insured: InsuredOut
    vehicle: VehicleOut
    insured_amount: Money
    deductible: Money
    coverages: list[str]
    payment_method: str
    premiums: dict[str, Money]  # each coverage's premium, in the catalogue's order
    base: Money  # their sum
    deductible_discount: Money
    net_base: Money  # base - deductible_discount
    tax: Money
    interest: Money
    total: Money  # net_base + tax + interest: the premium a policy charges
    currency: str
    quoted_at: str
    valid_until: str  # excluded


class PolicyOut(TypedDict):
    id: str
    quote_id: str
    account_id: str  # the account its premium is charged to (and refunded to)
    status: str  # requested, issued, rejected or cancelled
    vehicle: VehicleOut
    coverages: list[str]
    insured_amount: Money
    deductible: Money
    premium: Money
    currency: str
    payment_method: str
    requested_at: str
    charge_id: str | None  # the premium's ledger transfer (issued)
    starts_at: str | None  # the term (issued): one year
    ends_at: str | None
    reason: str | None  # why it was rejected: quote-expired, insufficient-funds …
    detail: str | None
    refund: Money | None  # what cancelling it gave back
    refund_id: str | None  # the refund's ledger transfer (none for a refund of 0.00)
    cancelled_at: str | None


def quote_view(record: QuoteRecord, now: datetime) -> QuoteOut:
    return {
        "id": record.id,
        "status": "valid" if record.holds_at(now) else "expired",
        "insured": {"name": record.insured_name, "cpf": record.insured_cpf},
        "vehicle": {
            "brand": record.vehicle_brand,
            "model": record.vehicle_model,
            "year": record.vehicle_year,
            "plate": record.vehicle_plate,
        },
        "insured_amount": from_cents(record.insured_amount),
        "deductible": from_cents(record.deductible),
        "coverages": list(record.premiums),
        "payment_method": record.payment_method,
        "premiums": {coverage: from_cents(p) for coverage, p in record.premiums.items()},
        "base": from_cents(record.base),
        "deductible_discount": from_cents(record.deductible_discount),
        "net_base": from_cents(record.net_base),
        "tax": from_cents(record.tax),
        "interest": from_cents(record.interest),
        "total": from_cents(record.total),
        "currency": CURRENCY,
        "quoted_at": iso(record.quoted_at),
        "valid_until": iso(record.valid_until),
    }


def policy_view(row: AnyRow) -> PolicyOut:
    return {
        "id": row.id,
        "quote_id": row.quote_id,
        "account_id": row.account_id,
        "status": row.status,
        "vehicle": {
            "brand": row.vehicle_brand,
            "model": row.vehicle_model,
            "year": row.vehicle_year,
            "plate": row.vehicle_plate,
        },
        "coverages": coverages_of_row(row),
        "insured_amount": from_cents(row.insured_amount),
        "deductible": from_cents(row.deductible),
        "premium": from_cents(row.premium),
        "currency": CURRENCY,
        "payment_method": row.payment_method,
        "requested_at": iso(row.requested_at),
        "charge_id": row.charge_id,
        "starts_at": _iso(row.starts_at),
        "ends_at": _iso(row.ends_at),
        "reason": row.reason,
        "detail": row.detail,
        "refund": None if row.refund is None else from_cents(row.refund),
        "refund_id": row.refund_id,
        "cancelled_at": _iso(row.cancelled_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)
