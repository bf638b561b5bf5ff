"""What banking answers: customers, accounts with their balances, statement lines, journal
entries, transfers and their status (exact money, ISO times)."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict  # pydantic needs this one on 3.11

from paycore.banking.domain import masked_cpf
from paycore.banking.ledger.domain import Balance, Entry, Limit, Outcome
from paycore.banking.ledger.service import side_of
from paycore.banking.ledger.store import balance_of
from paycore.banking.service import Requested
from paycore.platform.clock import iso
from paycore.platform.money import from_cents
from paycore.platform.persistence.db import AnyRow
from paycore.platform.web.responses import Money


class CustomerOut(TypedDict):
    id: str
    name: str
    cpf: str  # masked: ***.456.789-**
    created_at: str


class NewCustomerOut(CustomerOut):
    secret: str  # shown this once; only a keyed hash is stored


class BalanceOut(TypedDict):
    posted: Money  # on the account's normal side: what it holds
    available: Money  # posted less what is on hold
    held: Money  # pending debits (or credits, for an account whose credits are limited)
    debits_posted: Money
    credits_posted: Money
    debits_pending: Money
    credits_pending: Money


class AccountOut(TypedDict):
    id: str
    customer_id: str | None
    name: str | None
    kind: str
    currency: str
    limit: str
    status: str
    balance: BalanceOut
    created_at: str
    closed_at: str | None


class EntryOut(TypedDict):
    seq: int
    id: str
    kind: str
    code: str
    debit_account_id: str
    credit_account_id: str
    amount: Money
    currency: str
    pending_id: str | None
    at: str
    expires_at: str | None
    hash: str


class StatementLine(TypedDict):
    seq: int
    transfer_id: str
    kind: str
    code: str
    side: str  # debit or credit: which side of the entry this account is on
    amount: Money
    counterparty_account_id: str
    at: str
    balance: BalanceOut  # the account's, after this entry


class StatementPage(TypedDict):
    account_id: str
    data: list[StatementLine]
    next_cursor: int | None


class TransferOut(TypedDict):
    id: str
    status: str  # pending (accepted, not applied yet), posted or rejected
    from_account_id: str
    to_account_id: str
    amount: Money
    currency: str
    description: str
    accepted_at: str
    posted_at: str | None
    reason: str | None  # why it was rejected: insufficient-funds, account-closed …
    detail: str | None


class ResultOut(TypedDict):
    id: str
    result: str  # created, exists, or why it was refused (a stable code)
    detail: str | None
    entry: EntryOut | None


def customer_view(row: AnyRow) -> CustomerOut:
    return {
        "id": row.id,
        "name": row.name,
        "cpf": masked_cpf(row.cpf),
        "created_at": iso(row.created_at),
    }


def balance_view(balance: Balance, limit: Limit) -> BalanceOut:
    held = (
        balance.credits_pending
        if limit is Limit.CREDITS_MUST_NOT_EXCEED_DEBITS
        else balance.debits_pending
    )
    return {
        "posted": from_cents(balance.posted(limit)),
        "available": from_cents(balance.available(limit)),
        "held": from_cents(held),
        "debits_posted": from_cents(balance.debits_posted),
        "credits_posted": from_cents(balance.credits_posted),
        "debits_pending": from_cents(balance.debits_pending),
        "credits_pending": from_cents(balance.credits_pending),
    }


def account_view(row: AnyRow) -> AccountOut:
    limit = Limit(row.balance_limit)
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "name": row.name,
        "kind": row.kind,
        "currency": row.currency,
        "limit": limit.value,
        "status": row.status,
        "balance": balance_view(balance_of(row), limit),
        "created_at": iso(row.created_at),
        "closed_at": iso(row.closed_at) if row.closed_at else None,
    }


def entry_view(entry: Entry) -> EntryOut:
    return {
        "seq": entry.seq,
        "id": entry.id,
        "kind": entry.kind.value,
        "code": entry.code,
        "debit_account_id": entry.debit_account_id,
        "credit_account_id": entry.credit_account_id,
        "amount": from_cents(entry.amount),
        "currency": entry.currency,
        "pending_id": entry.pending_id,
        "at": iso(entry.at),
        "expires_at": iso(entry.expires_at) if entry.expires_at else None,
        "hash": entry.hash,
    }


def statement_line(entry: Entry, account_id: str, limit: Limit) -> StatementLine:
    debit = entry.debit_account_id == account_id
    return {
        "seq": entry.seq,
        "transfer_id": entry.id,
        "kind": entry.kind.value,
        "code": entry.code,
        "side": "debit" if debit else "credit",
        "amount": from_cents(entry.amount),
        "counterparty_account_id": entry.credit_account_id if debit else entry.debit_account_id,
        "at": iso(entry.at),
        "balance": balance_view(side_of(entry, account_id), limit),
    }


def transfer_view(row: AnyRow) -> TransferOut:
    status = "posted" if row.seq is not None else "rejected" if row.reason else "pending"
    return {
        "id": row.id,
        "status": status,
        "from_account_id": row.debit_account_id,
        "to_account_id": row.credit_account_id,
        "amount": from_cents(row.amount),
        "currency": row.currency,
        "description": row.description,
        "accepted_at": iso(row.accepted_at),
        "posted_at": iso(row.posted_at) if row.posted_at else None,
        "reason": row.reason,
        "detail": row.detail,
    }


def accepted_view(item: Requested) -> TransferOut:
    """A transfer request just written: pending until the ledger worker applies it (its
    answer is built from what was written, not read back)."""
    t = item.transfer
    return {
        "id": t.id,
        "status": "pending",
        "from_account_id": t.debit_account_id or "",
        "to_account_id": t.credit_account_id or "",
        "amount": from_cents(t.amount),
        "currency": t.currency or "",
        "description": item.description,
        "accepted_at": iso(item.now),
        "posted_at": None,
        "reason": None,
        "detail": None,
    }


def result_view(outcome: Outcome) -> ResultOut:
    if outcome.entry is None:
        result: Any = outcome.reason
    else:
        result = "exists" if outcome.replay else "created"
    return {
        "id": outcome.transfer_id,
        "result": str(result),
        "detail": outcome.detail or None,
        "entry": entry_view(outcome.entry) if outcome.entry else None,
    }
