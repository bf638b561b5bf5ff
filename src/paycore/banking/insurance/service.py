"""Auto insurance's use cases on the rules of ``quote`` and ``policy``: give a quote (stored,
then cached for as long as it holds), read it (the cache first, then the database), ask for a
policy with it (the request and its ``banking.insurance.issue`` event in one commit), issue or
reject it (the banking worker: ``issue``), read policies, cancel one (the pro-rata refund).

The premium is charged through the ledger from the customer's account to the bank's
``bank:insurance-premiums`` account, whatever the payment method the quote names (a Pix,
card or boleto charge of its own can come later), and refunded the same way. Issuing and
cancelling run under the ledger's lock (``LEDGER_LOCK``), which the ledger takes anyway: a
policy is read, charged and changed by one writer at a time, so it is issued once and
cancelled once, whatever the redeliveries or concurrent calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from paycore.banking import service as banking
from paycore.banking.domain import CUSTOMER_ACCOUNT
from paycore.banking.insurance import messages, store
from paycore.banking.insurance.cache import QuoteCache
from paycore.banking.insurance.messages import IssueMessage
from paycore.banking.insurance.policy import (
    QUOTE_EXPIRED,
    PolicyCancelled,
    PolicyNotIssued,
    PolicyStatus,
    QuoteTaken,
    policy_end,
    policy_id_of,
    premium_transfer_id,
    refund,
    refund_transfer_id,
)
from paycore.banking.insurance.quote import QuoteRequest, Rates, quote
from paycore.banking.insurance.store import QuoteRecord
from paycore.banking.ledger.domain import Status, single
from paycore.banking.ledger.service import LEDGER_LOCK, AccountClosed, BankAccount
from paycore.banking.settings import BankingSettings
from paycore.platform.clock import iso
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database, Transaction

PREMIUMS = BankAccount("bank:insurance-premiums", "insurance-premiums")
"""Where premiums are charged to and refunds come from (no limit of its own)."""
INSURANCE_BANK_ACCOUNTS = (PREMIUMS,)
CURRENCY = "BRL"
PREMIUM_CODE = "insurance-premium"
REFUND_CODE = "insurance-refund"


def rates_of(settings: BankingSettings) -> Rates:
    """The rates quotes are priced with, from ``PAYCORE_BANKING_INSURANCE_*``."""
    return Rates.of(
        settings.insurance_coverage_rates,
        deductible_discount_cap=settings.insurance_deductible_discount_cap,
        tax=settings.insurance_tax,
        interest=settings.insurance_interest,
        validity_days=settings.insurance_validity_days,
    )


class Insurance:
    """The customers' insurance use cases on one database, with the rates quotes are priced
    with, the quote cache and the id of the bank's premiums account."""

    def __init__(self, db: Database, *, rates: Rates, cache: QuoteCache, premiums_id: str) -> None:
        self.db = db
        self.rates = rates
        self.cache = cache
        self.premiums_id = premiums_id

    # -- quotes ---------------------------------------------------------------------------

    async def quote(self, customer_id: str, request: QuoteRequest, now: datetime) -> QuoteRecord:
        """``request`` priced at ``now``, stored, then cached until it stops holding."""
        row = store.quote_row(uuid7(), customer_id, quote(request, self.rates, now))
        async with self.db.transaction() as tx:
            await store.insert_quote(tx, row)
        record = store.record_of(row)
        await self.cache.put(record)
        return record

    async def find_quote(self, customer_id: str, quote_id: str) -> QuoteRecord:
        """The customer's quote: from the cache, else from the database (then cached again
        if it still holds); ``NotFound`` for an unknown one and for another's alike."""
        record = await self.cache.get(quote_id)
        if record is None:
            async with self.db.connect() as conn:
                row = await store.find_quote(conn, quote_id)
            if row is None:
                raise NotFound(f"quote {quote_id} is unknown")
            record = store.record_of(row)
            await self.cache.put(record)
        if record.customer_id != customer_id:
            raise NotFound(f"quote {quote_id} is unknown")
        return record

    # -- policies -------------------------------------------------------------------------

    async def request_policy(
        self, customer_id: str, quote_id: str, account_id: str, now: datetime
    ) -> AnyRow:
        """Ask for the policy ``quote_id`` buys, its premium charged to ``account_id`` (one of
        the customer's open checking accounts): the request and its
        ``banking.insurance.issue`` event in one commit, for the banking worker. The same
        quote again on the same account is the same policy (as it is now); on another
        account, ``QuoteTaken``. Whether the quote still holds is the worker's to decide, at
        the moment asked for (``issue``)."""
        policy_id = policy_id_of(quote_id)
        async with self.db.connect() as conn:
            quoted = await store.find_quote(conn, quote_id)
            if quoted is None or quoted.customer_id != customer_id:
                raise NotFound(f"quote {quote_id} is unknown")
            existing = await store.find_policy(conn, policy_id)
        if existing is not None:
            return _same_account(existing, account_id)
        account = await banking.own_account(self.db, customer_id, account_id)
        if account.kind != CUSTOMER_ACCOUNT:
            raise NotFound(f"account {account_id} is not a checking account")
        if account.status == Status.CLOSED.value:
            raise AccountClosed(f"account {account_id} is closed")
        try:
            async with self.db.transaction() as tx:
                await store.insert_policy(
                    tx,
                    {
                        "id": policy_id,
                        "quote_id": quote_id,
                        "customer_id": customer_id,
                        "account_id": account_id,
                        "status": PolicyStatus.REQUESTED.value,
                        "premium": quoted.total,
                        "payment_method": quoted.payment_method,
                        "requested_at": now,
                        "updated_at": now,
                    },
                )
                tx.publish(
                    messages.ISSUE,
                    messages.encode_issue(policy_id, quote_id),
                    key=quote_id,
                    message_id=f"insurance-issue-{policy_id}",
                )
        except IntegrityError:  # the same quote asked for at the same moment
            existing = await self._policy(policy_id)
            if existing is None:
                raise
            return _same_account(existing, account_id)
        row = await self._policy(policy_id)
        assert row is not None
        return row

    async def policies_of(self, customer_id: str) -> Sequence[AnyRow]:
        async with self.db.connect() as conn:
            return await store.policies_of(conn, customer_id)

    async def own_policy(self, customer_id: str, policy_id: str) -> AnyRow:
        """The customer's policy; ``NotFound`` for an unknown one and for another's alike."""
        return _own(await self._policy(policy_id), customer_id, policy_id)

    async def cancel(self, customer_id: str, policy_id: str, now: datetime) -> AnyRow:
        """Cancel an issued policy at ``now``: the unused part of its premium (``refund``)
        back to its account through the ledger, the status ``cancelled`` and its
        ``banking.insurance.cancelled`` event, in one commit. Once: ``PolicyCancelled`` after
        that, ``PolicyNotIssued`` for one not issued; the ledger's refusal of the refund
        (``TransferRefused``: the account closed …) leaves the policy as it was."""
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            policy = _own(await store.find_policy(tx.conn, policy_id), customer_id, policy_id)
            if policy.status == PolicyStatus.CANCELLED.value:
                raise PolicyCancelled(
                    f"policy {policy_id} was cancelled at {iso(policy.cancelled_at)}"
                )
            if policy.status != PolicyStatus.ISSUED.value:
                raise PolicyNotIssued(f"policy {policy_id} is {policy.status}, not issued")
            back = refund(policy.premium, policy.starts_at, policy.ends_at, now)
            refund_id = None
            if back > 0:
                refund_id = refund_transfer_id(policy_id)
                transfer = single(refund_id, self.premiums_id, policy.account_id, back, REFUND_CODE)
                await banking.apply_in(tx, transfer, now)
            await store.update_policy(
                tx,
                policy_id,
                now,
                status=PolicyStatus.CANCELLED.value,
                refund=back,
                refund_id=refund_id,
                cancelled_at=now,
            )
            return await _publish(tx, policy_id, messages.CANCELLED, messages.encode_cancelled)

    async def _policy(self, policy_id: str) -> AnyRow | None:
        async with self.db.connect() as conn:
            return await store.find_policy(conn, policy_id)


# --- the banking worker's part -------------------------------------------------------------


async def issue(
    tx: Transaction, message: IssueMessage, premiums_id: str, now: datetime
) -> str | None:
    """Issue or reject the policy ``message`` asks for, in the consumer's unit of work: None
    (done), or why the message is refused (it names no such policy: a dead letter).

    A policy no longer requested was issued or rejected before: nothing happens (a message
    delivered again, or another message for it). A quote that did not hold any more when the
    policy was asked for rejects it (``quote-expired``); so does the ledger's refusal of the
    premium's charge (``insufficient-funds``, ``account-closed`` …). Issued, the policy runs
    one year from now."""
    await tx.serialize(LEDGER_LOCK)  # the ledger's writer: one issuer of a policy at a time
    policy = await store.find_policy(tx.conn, message.policy_id)
    if policy is None or policy.quote_id != message.quote_id:
        return f"no policy {message.policy_id} was asked for with quote {message.quote_id}"
    if policy.status != PolicyStatus.REQUESTED.value:
        return None
    quoted = await store.find_quote(tx.conn, policy.quote_id)
    assert quoted is not None  # a policy's quote is its foreign key
    if not store.record_of(quoted).holds_at(policy.requested_at):
        detail = (
            f"the quote held until {iso(quoted.valid_until)}; "
            f"the policy was asked for at {iso(policy.requested_at)}"
        )
        await _reject(tx, policy.id, QUOTE_EXPIRED, detail, now)
        return None
    charge_id = None
    if policy.premium > 0:  # a premium rounded to nothing charges nothing
        charge_id = premium_transfer_id(policy.id)
        transfer = single(charge_id, policy.account_id, premiums_id, policy.premium, PREMIUM_CODE)
        outcome = await banking.outcome_in(tx, transfer, now)
        if outcome.entry is None:
            await _reject(tx, policy.id, str(outcome.reason), outcome.detail, now)
            return None
    await store.update_policy(
        tx,
        policy.id,
        now,
        status=PolicyStatus.ISSUED.value,
        charge_id=charge_id,
        starts_at=now,
        ends_at=policy_end(now),
    )
    await _publish(tx, policy.id, messages.ISSUED, messages.encode_issued)
    return None


async def _reject(tx: Transaction, policy_id: str, reason: str, detail: str, now: datetime) -> None:
    await store.update_policy(
        tx,
        policy_id,
        now,
        status=PolicyStatus.REJECTED.value,
        reason=reason[:48],
        detail=detail[:300],
    )
    await _publish(tx, policy_id, messages.REJECTED, messages.encode_rejected)


async def _publish(tx: Transaction, policy_id: str, topic: str, encode: messages.Encode) -> AnyRow:
    """The policy's event on ``topic``, as it is now (one per policy and topic); the policy."""
    row = await store.find_policy(tx.conn, policy_id)
    assert row is not None
    tx.publish(topic, encode(row), key=row.quote_id, message_id=f"{topic}-{policy_id}")
    return row


def _own(row: AnyRow | None, customer_id: str, policy_id: str) -> AnyRow:
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"policy {policy_id} is unknown")
    return row


def _same_account(policy: AnyRow, account_id: str) -> AnyRow:
    """The policy asked for again with its quote: itself on the same account."""
    if policy.account_id != account_id:
        raise QuoteTaken(
            f"quote {policy.quote_id} buys policy {policy.id}, charged to account "
            f"{policy.account_id}: a quote buys one policy"
        )
    return policy
