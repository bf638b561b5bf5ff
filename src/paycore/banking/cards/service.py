"""The cards' use cases: issue a card (its number and CVV shown once), block and unblock it,
change a credit card's limit, pay a credit card's bill; and the card network's calls:
authorize (a hold on the card's funding account), capture (post the hold, all or less), void.

Every write runs in a unit of work under the ledger's lock (``LEDGER_LOCK``), the one a
ledger batch takes: an authorization reads the card's status and moves money in one
serialized step, so once a block has committed no authorization gets past it.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from paycore.banking import metrics
from paycore.banking import service as banking
from paycore.banking.cards import store
from paycore.banking.cards.domain import (
    CREDIT_ACCOUNT,
    AuthorizationDeclined,
    AuthorizationIdReused,
    CardKind,
    CardState,
    CardStatus,
    CreditLimitInUse,
    CreditLimitRequired,
    CreditLimitTooHigh,
    Expiry,
    NotACreditCard,
    capture_id,
    decline_of,
    hold_id,
    new_cvv,
    new_number,
    void_id,
)
from paycore.banking.domain import CUSTOMER_ACCOUNT
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.domain import (
    Entry,
    Kind,
    Limit,
    Outcome,
    Reason,
    Status,
    Transfer,
    TransferIdReused,
    TransferRefused,
)
from paycore.banking.ledger.service import LEDGER_LOCK, AccountClosed, BankAccount
from paycore.banking.ledger.store import find_account
from paycore.platform.cards import Hasher, Keyring, brand_of, last4
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database, Transaction

CARD_SETTLEMENT = BankAccount("bank:card-settlement", "card-settlement")
"""Where card holds go and captures land: what the bank owes the card network."""
CREDIT_LINES = BankAccount("bank:credit-lines", "credit-lines")
"""Funds credit cards' accounts with their limits (no limit of its own)."""
CARD_BANK_ACCOUNTS = (CARD_SETTLEMENT, CREDIT_LINES)
CURRENCY = "BRL"
NUMBER_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class CardRules:
    """The bank's card settings (``BankingSettings.card_*``)."""

    bin: str
    years: int
    hold_seconds: int
    max_credit_limit: int


@dataclass(frozen=True, slots=True)
class Issued:
    row: AnyRow
    number: str  # shown this once: only sealed and as a keyed fingerprint is it kept
    cvv: str  # shown this once: only a keyed hash is kept


@dataclass(frozen=True, slots=True)
class Presented:
    """An authorization as the card network asks for it."""

    id: str
    number: str
    exp_month: int
    exp_year: int
    cvv: str
    amount: int
    currency: str
    merchant: str


class Cards:
    """The cards' use cases on one database, with the keys that protect card data and the
    ids of the bank's card accounts."""

    def __init__(
        self,
        db: Database,
        *,
        keyring: Keyring,
        hasher: Hasher,
        rules: CardRules,
        bank: dict[str, str],
    ) -> None:
        self.db = db
        self._keyring = keyring
        self._hasher = hasher
        self._rules = rules
        self._settlement = bank[CARD_SETTLEMENT.name]
        self._credit_lines = bank[CREDIT_LINES.name]

    # -- the customer's -------------------------------------------------------------------

    async def issue(
        self,
        customer_id: str,
        account_id: str,
        kind: CardKind,
        credit_limit: int | None,
        now: datetime,
    ) -> Issued:
        """A card on the customer's checking account; a credit card with its own account,
        funded with ``credit_limit`` from the bank's credit lines."""
        if (credit_limit is None) == (kind is CardKind.CREDIT):
            raise CreditLimitRequired("a credit card takes a credit_limit, a debit card none")
        if credit_limit is not None:
            self._check_limit(credit_limit)
        card_id = uuid7()
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            account = await find_account(tx.conn, account_id)
            if account is None or account.customer_id != customer_id:
                raise NotFound(f"account {account_id} is unknown")
            if account.kind != CUSTOMER_ACCOUNT:
                raise NotFound(f"account {account_id} is not a checking account")
            if account.status == Status.CLOSED.value:
                raise AccountClosed(f"account {account_id} is closed")
            number = await self._new_number(tx)
            funding = account_id
            if kind is CardKind.CREDIT:
                assert credit_limit is not None
                funding = await ledger.open_account(
                    tx, kind=CREDIT_ACCOUNT, limit=Limit.DEBITS_MUST_NOT_EXCEED_CREDITS, now=now
                )
                await self._move(tx, self._credit_lines, funding, credit_limit, now)
            cvv = new_cvv()
            expiry = Expiry.after(now, self._rules.years)
            await store.insert_card(
                tx,
                {
                    "id": card_id,
                    "customer_id": customer_id,
                    "account_id": account_id,
                    "funding_account_id": funding,
                    "kind": kind.value,
                    "status": CardStatus.ACTIVE.value,
                    "number_sealed": self._keyring.seal_text(number, card_id),
                    "fingerprint": self._hasher.platform_fingerprint(number),
                    "last4": last4(number),
                    "brand": brand_of(number) or "unbranded",
                    "exp_month": expiry.month,
                    "exp_year": expiry.year,
                    "cvv_hash": self._cvv_hash(card_id, cvv),
                    "credit_limit": credit_limit,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        return Issued(await self.own_card(customer_id, card_id), number, cvv)

    async def own_card(self, customer_id: str, card_id: str) -> AnyRow:
        """The customer's card; ``NotFound`` for an unknown one and for another's alike."""
        async with self.db.connect() as conn:
            row = await store.find_card(conn, card_id)
        return _own(row, customer_id, card_id)

    async def cards_of(self, customer_id: str) -> Sequence[AnyRow]:
        async with self.db.connect() as conn:
            return await store.cards_of(conn, customer_id)

    async def set_status(
        self, customer_id: str, card_id: str, status: CardStatus, now: datetime
    ) -> AnyRow:
        """Block or unblock the card: an authorization that commits after this does not get
        past a block (both take the ledger's lock)."""
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            card = _own(await store.find_card(tx.conn, card_id), customer_id, card_id)
            if card.status != status.value:
                await store.update_card(tx, card_id, now, status=status.value)
        return await self.own_card(customer_id, card_id)

    async def set_credit_limit(
        self, customer_id: str, card_id: str, credit_limit: int, now: datetime
    ) -> AnyRow:
        """Raise or lower a credit card's limit: the difference moves between the bank's
        credit lines and the card's account. A lowering below what is spent and held is
        refused (``CreditLimitInUse``)."""
        self._check_limit(credit_limit)
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            card = _own(await store.find_card(tx.conn, card_id), customer_id, card_id)
            if card.kind != CardKind.CREDIT.value:
                raise NotACreditCard(f"card {card_id} is a debit card")
            change = credit_limit - card.credit_limit
            if change:
                source, target = (self._credit_lines, card.funding_account_id)
                if change < 0:
                    source, target = target, source
                try:
                    await self._move(tx, source, target, abs(change), now)
                except TransferRefused as refused:
                    if refused.reason is not Reason.INSUFFICIENT_FUNDS:
                        raise
                    raise CreditLimitInUse(
                        f"the limit may come down by what is available at most: {refused.detail}"
                    ) from None
                await store.update_card(tx, card_id, now, credit_limit=credit_limit)
        return await self.own_card(customer_id, card_id)

    async def pay(
        self, customer_id: str, card_id: str, transfer_id: str, amount: int, now: datetime
    ) -> AnyRow:
        """Pay a credit card's bill from the checking account it was issued on: the card's
        available limit grows by ``amount``. The same ``transfer_id`` again is one payment."""
        card = await self.own_card(customer_id, card_id)
        if card.kind != CardKind.CREDIT.value:
            raise NotACreditCard(f"card {card_id} is a debit card")
        transfer = Transfer(
            id=transfer_id,
            kind=Kind.SINGLE,
            debit_account_id=card.account_id,
            credit_account_id=card.funding_account_id,
            amount=amount,
            currency=CURRENCY,
            code="card-payment",
        )
        async with self.db.transaction() as tx:
            await self._apply(tx, transfer, now)
        return await self.own_card(customer_id, card_id)

    async def authorizations_of(
        self, customer_id: str, card_id: str, *, offset: int, limit: int
    ) -> Sequence[AnyRow]:
        async with self.db.connect() as conn:
            _own(await store.find_card(conn, card_id), customer_id, card_id)
            return await store.authorizations_of(conn, card_id, offset=offset, limit=limit)

    # -- the card network's ---------------------------------------------------------------

    async def authorize(self, asked: Presented, now: datetime) -> AnyRow:
        """Approve (a hold on the card's funding account for ``amount``, released by itself
        after ``hold_seconds``) or decline, and record it either way. The same id with the
        same fields is answered as it was the first time; with other fields it is refused
        (``AuthorizationIdReused``)."""
        digest = self._request_hash(asked)
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            earlier = await store.find_authorization(tx.conn, asked.id)
            if earlier is not None:
                if not hmac.compare_digest(earlier.request_hash, digest):
                    raise AuthorizationIdReused(
                        f"authorization {asked.id} exists with other fields"
                    )
                return earlier
            outcome, hold, card_id = await self._decide(tx, asked, now)
            await store.insert_authorization(
                tx,
                {
                    "id": asked.id,
                    "card_id": card_id,
                    "request_hash": digest,
                    "merchant": asked.merchant,
                    "amount": asked.amount,
                    "currency": asked.currency,
                    "outcome": outcome,
                    "hold_id": hold,
                    "at": now,
                },
            )
            tx.after_commit(lambda: metrics.card_authorizations.labels(outcome).inc())
        return await self.authorization(asked.id)

    async def _decide(
        self, tx: Transaction, asked: Presented, now: datetime
    ) -> tuple[str, str | None, str | None]:
        """The outcome (``approved`` or why not), the hold's id and the card's id."""
        card = await store.card_by_fingerprint(
            tx.conn, self._hasher.platform_fingerprint(asked.number)
        )
        state = None
        cvv_matches = False
        if card is not None:
            state = CardState(Expiry(card.exp_month, card.exp_year), CardStatus(card.status))
            expected = self._cvv_hash(card.id, asked.cvv)
            cvv_matches = hmac.compare_digest(card.cvv_hash, expected)
        presented = Expiry(asked.exp_month, asked.exp_year)
        declined = decline_of(state, presented, cvv_matches, now)
        if declined is not None:
            return declined.value, None, card.id if card is not None else None
        assert card is not None
        hold = Transfer(
            id=hold_id(asked.id),
            kind=Kind.PENDING,
            debit_account_id=card.funding_account_id,
            credit_account_id=self._settlement,
            amount=asked.amount,
            currency=asked.currency,
            code="card-authorization",
            timeout_seconds=self._rules.hold_seconds,
        )
        outcome = await self._apply_outcome(tx, hold, now)
        if outcome.entry is None or outcome.replay:
            return str(outcome.reason or Reason.ID_REUSED), None, card.id
        return store.APPROVED, hold.id, card.id

    async def authorization(self, authorization_id: str) -> AnyRow:
        async with self.db.connect() as conn:
            row = await store.find_authorization(conn, authorization_id)
        if row is None:
            raise NotFound(f"authorization {authorization_id} is unknown")
        return row

    async def capture(self, authorization_id: str, amount: int | None, now: datetime) -> AnyRow:
        """Post the authorization's hold: ``amount`` (at most the hold's; None: all of it),
        the rest released. The same capture again is answered as the first; another amount
        is refused (``TransferIdReused``), as is a capture of a voided or expired hold."""
        await self._resolve(authorization_id, Kind.POST, amount, now)
        return await self.authorization(authorization_id)

    async def void(self, authorization_id: str, now: datetime) -> AnyRow:
        """Release the authorization's hold (again: the same answer)."""
        await self._resolve(authorization_id, Kind.VOID, None, now)
        return await self.authorization(authorization_id)

    async def _resolve(
        self, authorization_id: str, kind: Kind, amount: int | None, now: datetime
    ) -> None:
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            found = await store.find_authorization(tx.conn, authorization_id)
            if found is None:
                raise NotFound(f"authorization {authorization_id} is unknown")
            if found.hold_id is None:
                raise AuthorizationDeclined(
                    f"authorization {authorization_id} was declined ({found.outcome})"
                )
            post = kind is Kind.POST
            transfer = Transfer(
                id=capture_id(authorization_id) if post else void_id(authorization_id),
                kind=kind,
                amount=(amount or found.amount) if post else 0,
                pending_id=found.hold_id,
                code="card-capture" if post else "card-void",
            )
            await self._apply(tx, transfer, now)

    # -- helpers --------------------------------------------------------------------------

    async def _move(
        self, tx: Transaction, debit: str, credit: str, amount: int, now: datetime
    ) -> Entry:
        transfer = Transfer(
            id=uuid7(),
            kind=Kind.SINGLE,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            currency=CURRENCY,
            code="credit-limit",
        )
        return await self._apply(tx, transfer, now)

    async def _apply(self, tx: Transaction, transfer: Transfer, now: datetime) -> Entry:
        """One transfer in ``tx``: its entry (the original one of a replay), or
        ``TransferIdReused``/``TransferRefused``."""
        outcome = await self._apply_outcome(tx, transfer, now)
        if outcome.reason is Reason.ID_REUSED:
            raise TransferIdReused(outcome.detail)
        return banking.entry_or_refusal(outcome)

    async def _apply_outcome(self, tx: Transaction, transfer: Transfer, now: datetime) -> Outcome:
        applied = await ledger.apply(tx, [transfer], now)
        banking.publish_posted(tx, applied.outcomes)
        return applied.outcomes[0]

    async def _new_number(self, tx: Transaction) -> str:
        """A card number no card has yet."""
        for _ in range(NUMBER_ATTEMPTS):
            number = new_number(self._rules.bin)
            fingerprint = self._hasher.platform_fingerprint(number)
            if await store.card_by_fingerprint(tx.conn, fingerprint) is None:
                return number
        raise RuntimeError(f"no free card number under BIN {self._rules.bin} after retries")

    def _check_limit(self, credit_limit: int) -> None:
        if credit_limit > self._rules.max_credit_limit:
            raise CreditLimitTooHigh(
                f"the credit limit may be {self._rules.max_credit_limit} cents at most"
            )

    def _cvv_hash(self, card_id: str, cvv: str) -> str:
        """The stored form of a card's CVV: a keyed hash bound to the card."""
        return self._hasher.secret(f"banking-card-cvv\x00{card_id}\x00{cvv}")

    def _request_hash(self, asked: Presented) -> str:
        """A keyed hash of everything an authorization presents (CVV included): what tells a
        replay of its id from a reuse, with none of it stored."""
        fields = (
            asked.number,
            asked.exp_month,
            asked.exp_year,
            asked.cvv,
            asked.amount,
            asked.currency,
            asked.merchant,
        )
        return self._hasher.secret("banking-card-authorization\x00" + "\x00".join(map(str, fields)))


def _own(row: AnyRow | None, customer_id: str, card_id: str) -> AnyRow:
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"card {card_id} is unknown")
    return row
