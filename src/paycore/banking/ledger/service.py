"""The ledger's use cases: open an account, apply a batch of transfers, expire holds, change
an account's status, read balances and statements.

Every write to the journal happens in a unit of work holding the ledger's lock
(``LEDGER_LOCK``): on PostgreSQL an advisory lock taken first, on SQLite its single writer.
Writers therefore apply their batches one after another, each reading balances no one else is
changing: no lost update, no deadlock, no serialization failure for a caller to retry, and one
chain of hashes. Throughput comes from batches (a consumer's, a batch request's), not from
concurrent writers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking.ledger import cache, domain, store
from paycore.banking.ledger.domain import (
    Applied,
    Balance,
    Book,
    Entry,
    Limit,
    Status,
    Transfer,
    units,
)
from paycore.platform.errors import DomainError, NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.db import is_sqlite
from paycore.platform.persistence.uow import Database, Transaction

LEDGER_LOCK = 0x7061_7963_6C65_6467  # "paycledg": the ledger's advisory lock
BANK = uuid.UUID("5d9877b8-88f3-47df-9000-000000000002")
"""The namespace of the bank's own account ids: each is derived from its name, the same in
every process."""


class AccountNotEmpty(DomainError):
    """The account still has a balance or a hold: only an empty account closes."""

    code = "account-not-empty"
    status = 409


class AccountClosed(DomainError):
    """The account is closed: it takes no transfer and does not reopen."""

    code = "account-closed"
    status = 409


def bank_account_id(name: str) -> str:
    """The id of the bank's own account ``name`` (e.g. ``bank:cash``)."""
    return str(uuid.uuid5(BANK, name))


async def open_account(
    tx: Transaction,
    *,
    kind: str,
    limit: Limit,
    now: datetime,
    currency: str = "BRL",
    customer_id: str | None = None,
) -> str:
    account_id = uuid7()
    await store.insert_account(
        tx,
        account_id=account_id,
        kind=kind,
        currency=currency,
        limit=limit,
        now=now,
        customer_id=customer_id,
    )
    return account_id


@dataclass(frozen=True, slots=True)
class BankAccount:
    """One of the bank's own accounts: cash, card settlement, credit lines …"""

    name: str
    kind: str
    limit: Limit = Limit.NONE


async def ensure_bank_accounts(
    tx: Transaction, wanted: Sequence[BankAccount], now: datetime
) -> dict[str, str]:
    """The bank's own accounts, opened if they are not yet; their ids by name."""
    found = await store.named_accounts(tx.conn, [w.name for w in wanted])
    for account in wanted:
        if account.name not in found:
            await tx.serialize(LEDGER_LOCK)
            found |= await store.named_accounts(tx.conn, [account.name])
            if account.name in found:
                continue
            account_id = bank_account_id(account.name)
            await store.insert_account(
                tx,
                account_id=account_id,
                kind=account.kind,
                currency="BRL",
                limit=account.limit,
                now=now,
                name=account.name,
            )
            found[account.name] = account_id
    return {w.name: found[w.name] for w in wanted}


@dataclass(frozen=True, slots=True)
class Speculation:
    """A batch applied ahead of its turn, to the book its writer expected to find."""

    book: Book
    transfers: list[Transfer]
    applied: Applied


async def ahead_of_turn(
    known: cache.Accounts, transfers: Sequence[Transfer], now: datetime, db: Database
) -> Speculation | None:
    """Apply ``transfers`` to the book ``known`` expects the next batch to find, while the
    batch before is still being written: no lock; on PostgreSQL the accounts it does not keep
    are read as committed (that batch does not touch them) and kept from then on (on SQLite,
    whose one connection that batch holds, there is no book then). None if it expects no
    book."""
    unknown = known.unknown(transfers)
    if unknown is None or not transfers:
        return None
    read = {}
    if unknown and not is_sqlite(str(db.engine.url)):
        async with db.connect() as conn:
            read = await store.ledger_accounts(conn, unknown)
        known.learn(read)
    book = known.expected(transfers, read)
    if book is None:
        return None
    return Speculation(book, list(transfers), domain.apply(book, transfers, now))


async def apply(
    tx: Transaction,
    transfers: Sequence[Transfer],
    now: datetime,
    known: cache.Accounts | None = None,
    speculation: Speculation | None = None,
) -> Applied:
    """Apply a batch of transfers in the caller's unit of work: one outcome per transfer
    (``domain.apply``); the entries are written and the balances moved when it commits. A
    writer that applies batch after batch keeps ``known`` accounts from one to the next.

    A ``speculation`` (the same transfers, applied ahead of their turn) is taken as the
    outcome if the book read under the lock is the very book it was applied to: ``apply`` is
    a function of the book, the transfers and the time, so it is what applying them now would
    give (dated when it was made). Anything else (another writer came between, a status
    changed, an id was seen before, the batch before rolled back) and they are applied again."""
    if not transfers:
        return Applied([], [], {})
    await tx.serialize(LEDGER_LOCK)
    book = await store.load_book(tx.conn, transfers, known)
    if speculation is not None and speculation.transfers == transfers and speculation.book == book:
        applied = speculation.applied
    else:
        applied = domain.apply(book, transfers, now)
    if known is not None:
        mark = known.ahead(book, applied)  # before the writes: the next batch may start on it
        tx.after_commit(lambda: known.settled(mark))
    await store.write(tx, applied)
    return applied


async def expire(tx: Transaction, pending_ids: Sequence[str], now: datetime) -> Applied:
    """Release the holds among ``pending_ids`` that are due and not resolved yet."""
    await tx.serialize(LEDGER_LOCK)
    book = await store.book_for_expiry(tx.conn, pending_ids)
    applied = domain.expire(book, pending_ids, now)
    await store.write(tx, applied)
    return applied


async def set_status(tx: Transaction, account_id: str, status: Status, now: datetime) -> None:
    """Block, unblock or close an account. Under the ledger's lock: a close sees every
    transfer committed before it, and none after (an account is closed only when empty)."""
    await tx.serialize(LEDGER_LOCK)
    found = await store.ledger_accounts(tx.conn, [account_id])
    account = found.get(account_id)
    if account is None:
        raise NotFound(f"account {account_id} is unknown")
    if account.status is Status.CLOSED:
        raise AccountClosed(f"account {account_id} is closed")
    if status is Status.CLOSED and not account.balance.empty:
        raise AccountNotEmpty(
            f"account {account_id} holds {units(account.balance.posted(account.limit))} with "
            f"{units(account.balance.debits_pending + account.balance.credits_pending)} on hold"
        )
    await store.set_status(tx, account_id, status, now)


async def balance_at(conn: AsyncConnection, account_id: str, moment: datetime) -> Balance:
    """The account's balance as it was at ``moment``: after its last entry by then."""
    entry = await store.last_entry_before(conn, account_id, moment)
    return Balance() if entry is None else side_of(entry, account_id)


def side_of(entry: Entry, account_id: str) -> Balance:
    """The balance ``entry`` left on ``account_id`` (one of its two accounts)."""
    return entry.debit_after if entry.debit_account_id == account_id else entry.credit_after
