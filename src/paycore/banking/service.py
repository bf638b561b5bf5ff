"""Banking's use cases for customers: sign up, open and close accounts, deposit and withdraw
through the bank's cash account, and transfers asked for over HTTP: accepted with their
``banking.transfers`` event in one commit, applied by the ledger worker, which publishes
``banking.transfer.posted`` or ``banking.transfer.rejected``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking import messages, metrics, store
from paycore.banking.domain import (
    CUSTOMER_ACCOUNT,
    CUSTOMER_LIMIT,
    CustomerExists,
    Unauthorized,
    new_customer_secret,
)
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.cache import Accounts
from paycore.banking.ledger.domain import (
    Entry,
    Outcome,
    Reason,
    Transfer,
    TransferIdReused,
    TransferRefused,
    single,
)
from paycore.banking.ledger.service import BankAccount
from paycore.banking.ledger.store import find_account
from paycore.platform.cards import Hasher
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.messaging.decoding import Decoded, decode_each
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.batch import Batch, GroupWriter
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.reads import GroupRead, Read
from paycore.platform.persistence.uow import Database, Transaction

CASH = BankAccount("bank:cash", "cash")
"""The bank's cash: deposits are debited to it, withdrawals credited."""
BANK_ACCOUNTS = (CASH,)


# --- customers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewCustomer:
    row: AnyRow
    secret: str  # shown this once; only its keyed hash is stored


async def sign_up(
    tx: Transaction, *, name: str, cpf: str, hasher: Hasher, now: datetime
) -> NewCustomer:
    """A new customer (``cpf``: checked digits) and the secret they authenticate with."""
    if await store.customer_by_cpf(tx.conn, cpf) is not None:
        raise CustomerExists("a customer with this CPF exists already")
    customer_id, secret = uuid7(), new_customer_secret()
    await store.insert_customer(
        tx,
        {
            "id": customer_id,
            "name": name,
            "cpf": cpf,
            "secret_hash": hasher.secret(secret),
            "secret_hint": secret[:7],
            "created_at": now,
        },
    )
    row = await store.find_customer(tx.conn, customer_id)
    assert row is not None
    return NewCustomer(row, secret)


async def authenticate(db: Database, hasher: Hasher, authorization: str | None) -> AnyRow:
    """The customer whose secret the ``Authorization: Bearer`` header carries."""
    secret = secret_of(authorization)
    async with db.connect() as conn:
        row = await store.customer_by_secret(conn, hasher.secret(secret))
    if row is None:
        raise Unauthorized(UNKNOWN_CREDENTIAL)
    return row


def secret_of(authorization: str | None) -> str:
    """The customer secret an ``Authorization: Bearer bk_…`` header carries; ``Unauthorized``
    if it carries none."""
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith("bk_"):
        raise Unauthorized()
    return secret


UNKNOWN_CREDENTIAL = "The customer credential is unknown."


PayerKey = tuple[str, str]
"""A secret's hash and the account its holder would pay from."""
PayerRow = tuple[Any, ...]
"""``store.PAYER``'s row: the customer's id, and the account's id and currency (both None
when the account is not theirs)."""


class Payers:
    """Who may pay from which account: the customer a secret belongs to and the currency of
    their account, looked up (``payer_lookups``) and kept. What is kept cannot go stale: a
    customer's secret is set once, when they sign up, and no customer or account is ever
    deleted; an account never changes hands or currency (its status does, and the ledger
    checks that when it applies the transfer). Only what was found is kept: an unknown
    secret, or an account that is not the customer's, is looked up again each time. At most
    ``most`` pairs are kept (past that it starts over); each API process keeps its own."""

    def __init__(self, lookups: GroupRead[PayerKey, PayerRow], most: int = 100_000) -> None:
        self._lookups = lookups
        self._most = most
        self._found: dict[PayerKey, Payer] = {}

    async def find(self, hasher: Hasher, secret: str, account_id: str) -> Payer:
        """The secret's customer and the account they pay from; ``Unauthorized`` for an
        unknown secret, ``NotFound`` for an account that is unknown or another's."""
        key = (hasher.secret(secret), account_id)
        found = self._found.get(key)
        if found is not None:
            return found
        row = await self._lookups.one(key)
        if row is None:
            raise Unauthorized(UNKNOWN_CREDENTIAL)
        customer_id, paying_account, currency = row
        if paying_account is None:
            raise NotFound(f"account {account_id} is unknown")
        if len(self._found) >= self._most:
            self._found.clear()
        found = self._found[key] = Payer(customer_id, currency)
        return found


def payer_lookups(engine: AsyncEngine) -> GroupRead[PayerKey, PayerRow]:
    """The payers of the transfer requests waiting, looked up together: on PostgreSQL by one
    query (``store.PAYERS``); on SQLite one by one (``store.PAYER``: its reads run on the
    event loop's thread, one at a time anyway). A burst of requests from payers not seen yet
    (an API process just started, or many customers) costs a few queries, not one each."""
    if engine.dialect.name != "postgresql":
        single = Read(engine, store.PAYER)

        async def each(keys: Sequence[PayerKey]) -> dict[PayerKey, PayerRow]:
            found = {}
            for key in keys:
                row = await single.one(secret_hash=key[0], account_id=key[1])
                if row is not None:
                    found[key] = row
            return found

        return GroupRead(each)
    many = Read(engine, store.PAYERS)

    async def together(keys: Sequence[PayerKey]) -> dict[PayerKey, PayerRow]:
        rows = await many.all(
            secret_hashes=list({h for h, _ in keys}), account_ids=list({a for _, a in keys})
        )
        customers = {secret_hash: customer_id for secret_hash, _, customer_id, _ in rows}
        owned = {(h, a): (c, a, currency) for h, a, c, currency in rows if a is not None}
        return {
            key: owned.get(key, (customers[key[0]], None, None))
            for key in keys
            if key[0] in customers
        }

    return GroupRead(together)


@dataclass(frozen=True, slots=True)
class Payer:
    customer_id: str
    currency: str  # the paying account's


# --- accounts ------------------------------------------------------------------------------


async def open_account(tx: Transaction, customer_id: str, now: datetime) -> AnyRow:
    account_id = await ledger.open_account(
        tx, kind=CUSTOMER_ACCOUNT, limit=CUSTOMER_LIMIT, now=now, customer_id=customer_id
    )
    row = await find_account(tx.conn, account_id)
    assert row is not None
    return row


async def own_account(db: Database, customer_id: str, account_id: str) -> AnyRow:
    """The customer's account; ``NotFound`` for an unknown one and for another's alike."""
    async with db.connect() as conn:
        row = await find_account(conn, account_id)
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"account {account_id} is unknown")
    return row


async def cash_movement(
    db: Database,
    cash_id: str,
    account_id: str,
    *,
    transfer_id: str,
    amount: int,
    deposit: bool,
    now: datetime,
) -> Entry:
    """A deposit (cash to the account) or a withdrawal (the account to cash), applied at
    once; ``TransferRefused`` says why not (insufficient funds, a closed account …)."""
    debit, credit = (cash_id, account_id) if deposit else (account_id, cash_id)
    code = "deposit" if deposit else "withdrawal"
    return await apply_one(db, single(transfer_id, debit, credit, amount, code), now)


async def apply_one(db: Database, transfer: Transfer, now: datetime) -> Entry:
    """One transfer applied at once in a unit of work of its own (``apply_in``)."""
    async with db.transaction() as tx:
        return await apply_in(tx, transfer, now)


async def apply_in(tx: Transaction, transfer: Transfer, now: datetime) -> Entry:
    """One transfer applied in ``tx``: its entry (the original one if it is a replay), or
    ``TransferIdReused``/``TransferRefused``."""
    return entry_or_refusal(await outcome_in(tx, transfer, now))


async def outcome_in(tx: Transaction, transfer: Transfer, now: datetime) -> Outcome:
    """One transfer applied in ``tx``: what became of it."""
    applied = await ledger.apply(tx, [transfer], now)
    counted(tx, applied.outcomes)
    return applied.outcomes[0]


def entry_or_refusal(outcome: Outcome) -> Entry:
    """The outcome's entry; ``TransferIdReused`` (409) for an id taken by another transfer,
    ``TransferRefused`` (422) for any other refusal."""
    if outcome.entry is None:
        assert outcome.reason is not None
        if outcome.reason is Reason.ID_REUSED:
            raise TransferIdReused(outcome.detail)
        raise TransferRefused(outcome.reason, outcome.detail)
    return outcome.entry


def counted(tx: Transaction, outcomes: Sequence[Outcome]) -> None:
    """The outcomes counted in the metrics once they commit. Their ``banking.transfer.posted``
    events need nothing here: they are published from the journal (``banking.posted``)."""
    tx.after_commit(lambda: count(outcomes))


def count(outcomes: Sequence[Outcome]) -> None:
    """The outcomes in the metrics, each set of labels once (a batch is thousands)."""
    counted: Counter[tuple[str, str]] = Counter()
    for outcome in outcomes:
        if outcome.entry is None:
            counted["-", "rejected"] += 1
        elif not outcome.replay:
            counted[outcome.entry.kind.value, "applied"] += 1
    for labels, n in counted.items():
        metrics.transfers.labels(*labels).inc(n)


# --- transfers asked for over HTTP ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requested:
    customer_id: str
    transfer: Transfer
    description: str
    now: datetime
    correlation_id: str


def request(customer_id: str, transfer: Transfer, description: str, now: datetime) -> Requested:
    return Requested(customer_id, transfer, description, now, correlation_id.get())


def request_writer(db: Database) -> GroupWriter[Requested, Requested]:
    """Writes accepted transfer requests and their ``banking.transfers`` events by group
    commit. A transfer id taken already fails its item alone (``IntegrityError``)."""

    def build(items: Sequence[Requested], _ids: Sequence[int], batch: Batch) -> list[Requested]:
        rows = []
        for item in items:
            t = item.transfer
            rows.append(
                {
                    "id": t.id,
                    "customer_id": item.customer_id,
                    "debit_account_id": t.debit_account_id,
                    "credit_account_id": t.credit_account_id,
                    "amount": t.amount,
                    "currency": t.currency,
                    "description": item.description,
                    "accepted_at": item.now,
                }
            )
            batch.publish(
                messages.REQUESTS,
                messages.encode_request(t),
                key=t.debit_account_id,  # a partitioned broker keeps an account's order
                correlation_id=item.correlation_id,
            )
        batch.add(store.requests, rows)
        return list(items)

    return db.writer(build, tables=((store.requests, store.REQUEST_COLUMNS),))


def same_request(row: AnyRow, item: Requested) -> bool:
    """Whether a stored request asks for what ``item`` does (a replay of its id)."""
    t = item.transfer
    return bool(
        row.customer_id == item.customer_id
        and row.debit_account_id == t.debit_account_id
        and row.credit_account_id == t.credit_account_id
        and row.amount == t.amount
        and row.currency == t.currency
        and row.description == item.description
    )


async def request_row(db: Database, transfer_id: str) -> AnyRow | None:
    """A transfer request and what became of it, whoever asked for it."""
    async with db.connect() as conn:
        return await store.find_request(conn, transfer_id)


async def find_request(db: Database, customer_id: str, transfer_id: str) -> AnyRow:
    """The customer's transfer request; ``NotFound`` for another's too."""
    row = await request_row(db, transfer_id)
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"transfer {transfer_id} is unknown")
    return row


@dataclass(frozen=True, slots=True)
class Handled:
    verdicts: list[str | None]  # per message: None (done) or why it is refused
    posted: int
    rejected: int
    entries: list[Entry]  # the new ones, in journal order


@dataclass(frozen=True, slots=True)
class Ahead:
    """A batch of requests decoded, and applied if it could be (``ledger.ahead_of_turn``),
    while the batch before it was being written."""

    bodies: list[bytes]
    decoded: Decoded[Transfer]
    speculation: ledger.Speculation | None


async def ahead_of_turn(
    bodies: Sequence[bytes], now: datetime, known: Accounts, db: Database
) -> Ahead:
    """What ``apply_requests`` can do for these requests before the ledger's lock is its."""
    decoded = _requests(bodies)
    transfers = [t for _, t in decoded.values]
    return Ahead(list(bodies), decoded, await ledger.ahead_of_turn(known, transfers, now, db))


async def apply_requests(
    tx: Transaction,
    bodies: Sequence[bytes],
    now: datetime,
    known: Accounts | None = None,
    ahead: Ahead | None = None,
) -> Handled:
    """The ledger worker's part: apply the requested transfers in one batch; publish the
    refusals (the entries' posted events go from the journal). A request that comes again
    changes nothing and publishes nothing: one applied before is a replay of its entry (its
    event went out with it), one refused before keeps its refusal, even if the account could
    pay now. A message that does not decode is refused (a dead letter). What was done
    ``ahead`` for these very requests is used, if it still holds (``ledger.apply``)."""
    if ahead is not None and ahead.bodies != list(bodies):
        ahead = None
    decoded = ahead.decoded if ahead is not None else _requests(bodies)
    await tx.serialize(ledger.LEDGER_LOCK)  # refusals are written under it, by this worker
    refused_before = await store.refused_among(tx.conn, [t.id for _, t in decoded.values])
    transfers = [t for _, t in decoded.values if t.id not in refused_before]
    speculation = ahead.speculation if ahead is not None else None
    applied = await ledger.apply(tx, transfers, now, known, speculation)
    taken = speculation is not None and applied is speculation.applied
    tx.after_commit(lambda: metrics.ledger_batches.labels("ahead" if taken else "in_turn").inc())
    counted(tx, applied.outcomes)
    refused = [o for o in applied.outcomes if o.entry is None]
    await store.insert_rejections(
        tx, [(o.transfer_id, str(o.reason), o.detail[:300], now) for o in refused]
    )
    for outcome in refused:
        tx.publish(
            messages.REJECTED,
            messages.encode_rejected(outcome.transfer_id, str(outcome.reason), outcome.detail),
            key=outcome.transfer_id,
            message_id=f"rejected-{outcome.transfer_id}",
        )
    posted = sum(o.applied for o in applied.outcomes)
    return Handled(decoded.verdicts, posted, len(refused), applied.entries)


def _requests(bodies: Sequence[bytes]) -> Decoded[Transfer]:
    return decode_each(bodies, messages.decode_request, own=messages.BadMessage)
