"""The ledger's tables and queries: accounts, their balances, and the journal.

The journal (``banking_entries``) is append-only: an entry is written once and never changed
or deleted; a correction is a new transfer. It is numbered without gaps (``seq``) and each
entry carries the hash of its content chained to the entry before, so ``verify`` finds a row
changed, removed or inserted. ``banking_balances`` holds each account's sums as the journal
makes them (each entry also carries both accounts' balances after it): a cache of the journal
that the ledger updates as it writes entries, and ``verify`` checks against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking.ledger.cache import Accounts
from paycore.banking.ledger.domain import (
    Account,
    Applied,
    Balance,
    Book,
    Entry,
    Kind,
    Limit,
    Status,
    Transfer,
    sums,
)
from paycore.platform.persistence.db import AnyRow, UtcDateTime, among, metadata
from paycore.platform.persistence.uow import Transaction

accounts = Table(
    "banking_accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), ForeignKey("banking_customers.id")),
    Column("name", String(100), unique=True),  # the bank's own accounts only, e.g. bank:cash
    Column("kind", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_limit", String(40), nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime()),
    Index("ix_banking_accounts_customer", "customer_id", "created_at"),
)

balances = Table(
    "banking_balances",
    metadata,
    Column("account_id", String(36), ForeignKey("banking_accounts.id"), primary_key=True),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
)

SUMS = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
DEBIT_AFTER = tuple(f"dr_{name}" for name in SUMS)
CREDIT_AFTER = tuple(f"cr_{name}" for name in SUMS)

entries = Table(
    "banking_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False, unique=True),
    Column("kind", String(8), nullable=False),
    Column("pending_id", String(64), unique=True),  # a hold is resolved once, whoever tries
    Column("debit_account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("credit_account_id", String(36), ForeignKey("banking_accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("code", String(32), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime()),
    *(Column(name, BigInteger, nullable=False) for name in DEBIT_AFTER + CREDIT_AFTER),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_banking_entries_debit", "debit_account_id", "seq"),
    Index("ix_banking_entries_credit", "credit_account_id", "seq"),
    Index("ix_banking_entries_expires", "expires_at"),
)
ENTRY_COLUMNS = tuple(c.name for c in entries.c)

ledger_state = Table(
    "banking_ledger_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # one row: id 1
    Column("status_changes", BigInteger, nullable=False),
    Column("published_seq", BigInteger, nullable=False, server_default="0"),
)
"""``status_changes``: how many times an account's status changed. With the journal's head it
dates what a ledger writer knows of the accounts (``cache.Accounts``): block, unblock and close
move no entry, so they move this. ``published_seq``: the journal's entries up to it have had
their ``banking.transfer.posted`` event confirmed by the broker (``banking.posted``)."""


# --- accounts ------------------------------------------------------------------------------


async def insert_account(
    tx: Transaction,
    *,
    account_id: str,
    kind: str,
    currency: str,
    limit: Limit,
    now: datetime,
    customer_id: str | None = None,
    name: str | None = None,
) -> None:
    await tx.execute(
        accounts.insert().values(
            id=account_id,
            customer_id=customer_id,
            name=name,
            kind=kind,
            currency=currency,
            balance_limit=limit.value,
            status=Status.OPEN.value,
            created_at=now,
        )
    )
    await tx.execute(balances.insert().values(account_id=account_id, **dict.fromkeys(SUMS, 0)))


async def find_account(conn: AsyncConnection, account_id: str) -> AnyRow | None:
    """An account with its balance sums."""
    query = (
        select(accounts, *(balances.c[name] for name in SUMS))
        .join(balances, balances.c.account_id == accounts.c.id)
        .where(accounts.c.id == account_id)
    )
    return (await conn.execute(query)).first()


async def accounts_of(conn: AsyncConnection, customer_id: str) -> Sequence[AnyRow]:
    query = (
        select(accounts, *(balances.c[name] for name in SUMS))
        .join(balances, balances.c.account_id == accounts.c.id)
        .where(accounts.c.customer_id == customer_id)
        .order_by(accounts.c.created_at, accounts.c.id)
    )
    return (await conn.execute(query)).all()


async def named_accounts(conn: AsyncConnection, names: Iterable[str]) -> dict[str, str]:
    """The ids of the bank's own accounts, by name."""
    query = select(accounts.c.name, accounts.c.id).where(accounts.c.name.in_(list(names)))
    return {name: account_id for name, account_id in (await conn.execute(query)).all()}


async def set_status(tx: Transaction, account_id: str, status: Status, now: datetime) -> None:
    closed = {"closed_at": now} if status is Status.CLOSED else {}
    await tx.execute(
        update(accounts).where(accounts.c.id == account_id).values(status=status.value, **closed)
    )
    changes = ledger_state.c.status_changes
    await tx.execute(update(ledger_state).values(status_changes=changes + 1))


def balance_of(row: Any, prefix: str = "") -> Balance:
    return Balance(*(getattr(row, prefix + name) for name in SUMS))


# --- the book a batch is applied to --------------------------------------------------------


async def load_book(
    conn: AsyncConnection, transfers: Sequence[Transfer], known: Accounts | None = None
) -> Book:
    """Everything ``domain.apply`` needs to know for ``transfers``. The caller holds the
    ledger's lock, so nothing read here changes before its commit. The accounts ``known``
    holds as of this very state of the ledger are taken from it, not read."""
    ids = list({t.id for t in transfers})
    pending_ids = list({t.pending_id for t in transfers if t.pending_id is not None})
    book = await _head(conn)
    book.existing = await _entries(conn, ids)
    if pending_ids:
        book.pending = await _entries(conn, pending_ids)
        book.resolved = await resolutions(conn, pending_ids)
    named = {t.debit_account_id for t in transfers} | {t.credit_account_id for t in transfers}
    for held in book.pending.values():
        named |= {held.debit_account_id, held.credit_account_id}
    wanted = [n for n in named if n is not None]
    cached = known.at(book.mark) if known is not None else {}
    book.accounts = {n: cached[n] for n in wanted if n in cached}
    book.accounts |= await ledger_accounts(conn, [n for n in wanted if n not in cached])
    return book


async def book_for_expiry(conn: AsyncConnection, pending_ids: Sequence[str]) -> Book:
    book = await _head(conn)
    book.pending = await _entries(conn, pending_ids)
    book.resolved = await resolutions(conn, pending_ids)
    named = {e.debit_account_id for e in book.pending.values()}
    named |= {e.credit_account_id for e in book.pending.values()}
    book.accounts = await ledger_accounts(conn, list(named))
    return book


async def _head(conn: AsyncConnection) -> Book:
    """A book with the journal's head and the count of status changes (None without the
    state row: then no cache holds)."""
    changes = select(ledger_state.c.status_changes).scalar_subquery()
    query = select(changes, entries.c.seq, entries.c.hash, entries.c.at)
    last = (await conn.execute(query.order_by(entries.c.seq.desc()).limit(1))).first()
    if last is None:  # an empty journal
        return Book(accounts={}, status_changes=await conn.scalar(select(changes)))
    return Book(accounts={}, seq=last.seq, head=last.hash, at=last.at, status_changes=last[0])


async def ledger_accounts(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Account]:
    if not ids:
        return {}
    query = (
        select(
            accounts.c.id,
            accounts.c.currency,
            accounts.c.balance_limit,
            accounts.c.status,
            *(balances.c[name] for name in SUMS),
        )
        .join(balances, balances.c.account_id == accounts.c.id)
        .where(among(conn, accounts.c.id, ids))
    )
    # Rows unpacked as tuples, enums by dict: for a batch's thousands of accounts, attribute
    # access on rows and calls to the enum classes cost more than the query itself.
    rows = (await conn.execute(query)).all()
    return {
        account_id: Account(account_id, currency, _LIMITS[limit], _STATUSES[status], Balance(*sums))
        for account_id, currency, limit, status, *sums in rows
    }


_LIMITS = {limit.value: limit for limit in Limit}
_STATUSES = {status.value: status for status in Status}


async def _entries(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Entry]:
    if not ids:
        return {}
    rows = (await conn.execute(select(entries).where(among(conn, entries.c.id, ids)))).all()
    return {row.id: entry_of(row) for row in rows}


async def resolutions(conn: AsyncConnection, pending_ids: Sequence[str]) -> dict[str, Kind]:
    query = select(entries.c.pending_id, entries.c.kind).where(
        among(conn, entries.c.pending_id, pending_ids)
    )
    return {pending_id: Kind(kind) for pending_id, kind in (await conn.execute(query)).all()}


def entry_of(row: Any) -> Entry:
    return Entry(
        seq=row.seq,
        id=row.id,
        kind=Kind(row.kind),
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=row.amount,
        currency=row.currency,
        code=row.code,
        at=row.at,
        pending_id=row.pending_id,
        expires_at=row.expires_at,
        debit_after=balance_of(row, "dr_"),
        credit_after=balance_of(row, "cr_"),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def entry_row(entry: Entry) -> tuple[Any, ...]:
    """An entry as a row, in ``ENTRY_COLUMNS`` order."""
    return (
        entry.seq,
        entry.id,
        entry.kind.value,
        entry.pending_id,
        entry.debit_account_id,
        entry.credit_account_id,
        entry.amount,
        entry.currency,
        entry.code,
        entry.at,
        entry.expires_at,
        *sums(entry.debit_after),
        *sums(entry.credit_after),
        entry.prev_hash,
        entry.hash,
    )


async def write(tx: Transaction, applied: Applied) -> None:
    """A batch's new entries and the balances they leave."""
    if not applied.entries:
        return
    await tx.insert(entries, ENTRY_COLUMNS, [entry_row(e) for e in applied.entries])
    await tx.update_rows(
        balances,
        "account_id",
        SUMS,
        [(account_id, *sums(b)) for account_id, b in applied.balances.items()],
    )


# --- reads ---------------------------------------------------------------------------------


async def find_entry(conn: AsyncConnection, transfer_id: str) -> Entry | None:
    row = (await conn.execute(select(entries).where(entries.c.id == transfer_id))).first()
    return None if row is None else entry_of(row)


async def resolution_of(conn: AsyncConnection, pending_id: str) -> Entry | None:
    query = select(entries).where(entries.c.pending_id == pending_id)
    row = (await conn.execute(query)).first()
    return None if row is None else entry_of(row)


async def statement(
    conn: AsyncConnection,
    account_id: str,
    *,
    since: datetime | None,
    until: datetime | None,
    after_seq: int | None,
    limit: int,
) -> list[Entry]:
    """The account's entries, oldest first, from ``after_seq`` (exclusive), within
    ``[since, until)``."""
    mine = or_(entries.c.debit_account_id == account_id, entries.c.credit_account_id == account_id)
    query = select(entries).where(mine)
    if after_seq is not None:
        query = query.where(entries.c.seq > after_seq)
    if since is not None:
        query = query.where(entries.c.at >= since)
    if until is not None:
        query = query.where(entries.c.at < until)
    rows = (await conn.execute(query.order_by(entries.c.seq).limit(limit))).all()
    return [entry_of(row) for row in rows]


async def last_entry_before(
    conn: AsyncConnection, account_id: str, moment: datetime
) -> Entry | None:
    """The account's last entry at or before ``moment`` (its balance after is the balance
    then)."""
    found: list[Entry] = []
    for column in (entries.c.debit_account_id, entries.c.credit_account_id):
        query = (
            select(entries)
            .where(column == account_id, entries.c.at <= moment)
            .order_by(entries.c.seq.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
        if row is not None:
            found.append(entry_of(row))
    return max(found, key=lambda e: e.seq, default=None)


async def due_holds(
    conn: AsyncConnection, since: datetime | None, now: datetime, limit: int
) -> list[str]:
    """Pending transfers whose timeout ran out by ``now`` (from ``since`` on, if given) and
    that nothing resolved yet, soonest first."""
    resolution = entries.alias("resolution")
    query = (
        select(entries.c.id)
        .where(
            entries.c.kind == Kind.PENDING.value,
            entries.c.expires_at <= now,
            ~select(resolution.c.seq).where(resolution.c.pending_id == entries.c.id).exists(),
        )
        .order_by(entries.c.expires_at)
        .limit(limit)
    )
    if since is not None:
        query = query.where(entries.c.expires_at >= since)
    return list((await conn.execute(query)).scalars())


async def next_expiry(conn: AsyncConnection, after: datetime) -> datetime | None:
    """The soonest time a hold is due after ``after`` (resolved or not: a hint)."""
    query = select(func.min(entries.c.expires_at)).where(entries.c.expires_at > after)
    found: datetime | None = (await conn.execute(query)).scalar()
    return found


async def published_seq(conn: AsyncConnection) -> int:
    """The last entry whose posted event the broker confirmed (0: none)."""
    found = await conn.scalar(select(ledger_state.c.published_seq))
    return int(found or 0)


async def set_published_seq(tx: Transaction, seq: int) -> None:
    """Move ``published_seq`` forward to ``seq`` (never back)."""
    column = ledger_state.c.published_seq
    await tx.execute(update(ledger_state).where(column < seq).values(published_seq=seq))


async def journal_columns(
    conn: AsyncConnection, names: Sequence[str], after_seq: int, limit: int
) -> list[tuple[Any, ...]]:
    """The columns ``names`` of the entries after ``after_seq``, in order, as tuples."""
    query = select(*(entries.c[name] for name in names)).where(entries.c.seq > after_seq)
    rows = await conn.execute(query.order_by(entries.c.seq).limit(limit))
    return [tuple(row) for row in rows]


async def journal(conn: AsyncConnection, after_seq: int, limit: int) -> list[Entry]:
    query = select(entries).where(entries.c.seq > after_seq).order_by(entries.c.seq).limit(limit)
    return [entry_of(row) for row in (await conn.execute(query)).all()]


async def all_balances(conn: AsyncConnection) -> Mapping[str, Balance]:
    rows = (await conn.execute(select(balances))).all()
    return {row.account_id: balance_of(row) for row in rows}


async def account_limits(conn: AsyncConnection) -> dict[str, Limit]:
    rows = (await conn.execute(select(accounts.c.id, accounts.c.balance_limit))).all()
    return {account_id: Limit(limit) for account_id, limit in rows}


async def held_total(conn: AsyncConnection) -> int:
    """What every pending transfer holds (each holds on its debit account's pending debits)."""
    found = (await conn.execute(select(func.sum(balances.c.debits_pending)))).scalar()
    return int(found or 0)


async def entry_count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(entries))).scalar_one())
