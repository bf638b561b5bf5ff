"""Gateway use cases: merchant accounts; transactions accepted as ``pending`` with their
encrypted ``transactions`` event in the same commit; the processor's decisions, stored once
with their ``transactions_result`` event; the results applied once to the merchant's view,
with a webhook delivery queued when the account has a URL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from paycore.gateway import messages, store
from paycore.gateway.crypto import WEBHOOK_SECRET_PREFIX, new_secret
from paycore.gateway.domain import PENDING, Card, NotFound, decide
from paycore.platform.cards import CardKeyError, Hasher, Keyring, brand_of, last4
from paycore.platform.clock import iso
from paycore.platform.ids import uuid7
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.money import from_cents
from paycore.platform.observability.logging import correlation_id
from paycore.platform.persistence.batch import Batch, GroupWriter
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database, Transaction

WEBHOOK_EVENT = "transaction.decided"


# --- accounts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A created account and its credentials, shown this once."""

    row: Any
    secret: str
    webhook_secret: str


async def create_account(
    tx: Transaction,
    *,
    name: str,
    webhook_url: str | None,
    hasher: Hasher,
    keyring: Keyring,
    now: datetime,
) -> NewAccount:
    """Create an active account with a fresh secret (only its keyed hash is stored) and a
    webhook signing secret (stored sealed)."""
    account_id, secret, signing = uuid7(), new_secret(), new_secret(WEBHOOK_SECRET_PREFIX)
    await store.insert_account(
        tx,
        store.AccountRecord(
            id=account_id,
            name=name,
            secret_hash=hasher.secret(secret),
            secret_hint=secret[:9],
            webhook_url=webhook_url,
            webhook_secret=keyring.seal_text(signing, account_id),
            status=store.ACTIVE,
            created_at=now,
            updated_at=now,
        ),
    )
    return NewAccount(await store.find_account(tx.conn, account_id), secret, signing)


async def update_account(
    tx: Transaction, account_id: str, changes: store.AccountChanges, *, now: datetime
) -> AnyRow:
    """Change the name, the webhook URL and/or the status; NotFound for an unknown account."""
    row = await store.update_account(tx, account_id, changes, now)
    if row is None:
        raise NotFound(f"account {account_id} is unknown")
    return row


# --- transactions: the API side -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated transaction, its card sealed, ready to be written with its event."""

    record: store.TransactionRecord
    message: bytes
    correlation_id: str


def prepare_transaction(
    account_id: str,
    amount_cents: int,
    card: Card,
    *,
    keyring: Keyring,
    hasher: Hasher,
    now: datetime,
) -> Prepared:
    """Build the stored row (brand, last 4, expiry, the holder sealed, fingerprint: never the
    number or the CVV) and the ``transactions`` event carrying, sealed, what the processor
    decides on (the CVV judged here: it never leaves this process)."""
    transaction_id = uuid7()
    sealed = messages.seal_card(keyring, transaction_id, card.facts())
    record = store.TransactionRecord(
        id=transaction_id,
        account_id=account_id,
        amount_cents=amount_cents,
        brand=brand_of(card.number),
        last4=last4(card.number),
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        holder=None,
        holder_sealed=store.seal_holder(keyring, transaction_id, card.holder),
        fingerprint=hasher.merchant_fingerprint(account_id, card.number),
        platform_fingerprint=hasher.platform_fingerprint(card.number),
        status=PENDING,
        error_message="",
        created_at=now,
        updated_at=now,
        decided_at=None,
    )
    body = messages.encode_transaction(transaction_id, account_id, amount_cents, sealed)
    return Prepared(record, body, correlation_id.get())


def transaction_writer(db: Database) -> GroupWriter[Prepared, store.TransactionRecord]:
    """Writes pending transactions and their ``transactions`` events by group commit."""

    def build(
        prepared: Sequence[Prepared], _ids: Sequence[int], batch: Batch
    ) -> list[store.TransactionRecord]:
        batch.add(store.transactions, [store.row_of(p.record) for p in prepared])
        for p in prepared:
            batch.publish(
                messages.TRANSACTIONS,
                p.message,
                key=p.record.id,
                correlation_id=p.correlation_id,
            )
        return [p.record for p in prepared]

    columns = [c.name for c in store.transactions.c]
    return db.writer(build, tables=((store.transactions, columns),))


async def seal_clear_holders(db: Database, keyring: Keyring, *, batch: int = 500) -> int:
    """Seal the holder names rows stored before names were sealed still keep in clear, a
    batch per transaction; returns how many."""
    done = 0
    while True:
        async with db.connect() as conn:
            rows = await store.clear_holders(conn, batch)
        if not rows:
            return done
        async with db.transaction() as tx:
            await store.seal_holders(
                tx, [(r.id, store.seal_holder(keyring, r.id, r.holder)) for r in rows]
            )
        done += len(rows)


# --- the processor -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decided:
    verdicts: list[str | None]  # per message: None (done) or why it is refused
    statuses: dict[int, str]  # message index -> status of the decision it stored


async def decide_transactions(
    tx: Transaction, bodies: Sequence[bytes], *, keyring: Keyring, today: date, now: datetime
) -> Decided:
    """Decide each ``transactions`` message once: a transaction already decided (a message
    published twice) is skipped, since its result went out with its decision. Answers per
    message None (done) or why it is refused (malformed, or a card that cannot be decrypted:
    it becomes a dead letter, the transaction stays pending until an operator replays it),
    and the decisions this call stored, by message."""
    decoded = decode_each(bodies, messages.decode_transaction, own=messages.BadMessage)
    verdicts = decoded.verdicts
    statuses: dict[int, str] = {}
    done = await store.decided(tx.conn, [m.id for _, m in decoded.values])
    todo = [(index, m) for index, m in decoded.values if m.id not in done]
    opened = decode_each(
        [m for _, m in todo],
        lambda m: messages.open_card(keyring, m),
        own=(CardKeyError, messages.BadMessage),
    )
    for position, reason in enumerate(opened.verdicts):
        if reason is not None:
            verdicts[todo[position][0]] = reason
    records: list[store.DecisionRecord] = []
    for position, card in opened.values:
        index, message = todo[position]
        if message.id in done:  # the same transaction twice in the batch
            continue
        decision = decide(card, message.amount_cents, today)
        done.add(message.id)
        statuses[index] = decision.status
        records.append(
            store.DecisionRecord(
                message.id,
                message.account_id,
                decision.status,
                decision.error_message,
                brand_of(card.number),
                now,
            )
        )
        tx.publish(
            messages.RESULTS,
            messages.encode_result(message.id, decision.status, decision.error_message),
            key=message.id,
        )
    await store.insert_decisions(tx, records)
    return Decided(verdicts, statuses)


# --- results: the merchant's view ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    verdicts: list[str | None]  # per message: None (done) or why it is refused
    webhooks: int  # deliveries queued


async def apply_results(tx: Transaction, bodies: Sequence[bytes], *, now: datetime) -> Applied:
    """Move each transaction from pending to its decision once, and queue one webhook
    delivery per decided transaction of an account with a webhook URL. A repeated result is
    harmless; a result for an unknown transaction is refused."""
    decoded = decode_each(bodies, messages.decode_result, own=messages.BadMessage)
    verdicts, parsed = decoded.verdicts, decoded.values
    known = await store.pending_of(tx.conn, [r.id for _, r in parsed])
    updates: dict[str, store.Verdict] = {}
    webhooks: list[store.DeliveryRecord] = []
    for index, result in parsed:
        row = known.get(result.id)
        if row is None:
            verdicts[index] = f"transaction {result.id} is unknown"
            continue
        if row.status != PENDING or result.id in updates:
            continue  # already decided: a repeat
        updates[result.id] = store.Verdict(result.id, result.status, result.error_message, now)
        if row.webhook_url:
            webhooks.append(_delivery(row, result, now))
    await store.record_decisions(tx, list(updates.values()))
    await store.insert_deliveries(tx, webhooks)
    return Applied(verdicts, len(webhooks))


def _delivery(row: Any, result: messages.ResultMessage, now: datetime) -> store.DeliveryRecord:
    body = orjson.dumps(
        {
            "event": WEBHOOK_EVENT,
            "id": result.id,
            "status": result.status,
            "error_message": result.error_message,
            "amount": orjson.Fragment(str(from_cents(row.amount_cents)).encode()),
            "decided_at": iso(now),
        }
    )
    return store.DeliveryRecord(
        id=uuid7(),
        account_id=row.account_id,
        transaction_id=result.id,
        url=row.webhook_url,
        body=body,
        status=store.DELIVERY_PENDING,
        attempts=0,
        next_attempt_at=now,
        claimed_until=None,
        last_status_code=None,
        last_error=None,
        created_at=now,
        delivered_at=None,
    )
