"""The cards' use cases for their customers: issue a card (its number and CVV shown once),
read it, block and unblock it, change a credit card's limit, pay a credit card's bill (the card
network's calls are in ``network``).

Every write runs in a unit of work under the ledger's lock (``LEDGER_LOCK``), the one a
ledger batch takes (and an authorization): a block commits before or after an authorization,
never in the middle of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from paycore.banking import service as banking
from paycore.banking.cards import store
from paycore.banking.cards.domain import (
    CREDIT_ACCOUNT,
    CardKind,
    CardStatus,
    CreditLimitInUse,
    CreditLimitRequired,
    CreditLimitTooHigh,
    Expiry,
    NotACreditCard,
    new_cvv,
    new_number,
)
from paycore.banking.domain import CUSTOMER_ACCOUNT
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.domain import (
    Entry,
    Limit,
    Reason,
    Status,
    TransferRefused,
    single,
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
    """The bank's rules for issuing cards (``BankingSettings.card_*``)."""

    bin: str
    years: int
    max_credit_limit: int


@dataclass(frozen=True, slots=True)
class Issued:
    row: AnyRow
    number: str  # shown this once: only sealed and as a keyed fingerprint is it kept
    cvv: str  # shown this once: only a keyed hash is kept


class Cards:
    """The customers' card use cases on one database, with the keys that protect card data
    and the id of the bank's credit lines account."""

    def __init__(
        self,
        db: Database,
        *,
        keyring: Keyring,
        hasher: Hasher,
        rules: CardRules,
        credit_lines_id: str,
    ) -> None:
        self.db = db
        self._keyring = keyring
        self._hasher = hasher
        self._rules = rules
        self._credit_lines = credit_lines_id

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
                    "cvv_hash": cvv_hash(self._hasher, card_id, cvv),
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
        transfer = single(
            transfer_id, card.account_id, card.funding_account_id, amount, "card-payment", CURRENCY
        )
        async with self.db.transaction() as tx:
            await banking.apply_in(tx, transfer, now)
        return await self.own_card(customer_id, card_id)

    async def authorizations_of(
        self, customer_id: str, card_id: str, *, offset: int, limit: int
    ) -> Sequence[AnyRow]:
        async with self.db.connect() as conn:
            _own(await store.find_card(conn, card_id), customer_id, card_id)
            return await store.authorizations_of(conn, card_id, offset=offset, limit=limit)

    # -- helpers --------------------------------------------------------------------------

    async def _move(
        self, tx: Transaction, debit: str, credit: str, amount: int, now: datetime
    ) -> Entry:
        transfer = single(uuid7(), debit, credit, amount, "credit-limit", CURRENCY)
        return await banking.apply_in(tx, transfer, now)

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


def _own(row: AnyRow | None, customer_id: str, card_id: str) -> AnyRow:
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"card {card_id} is unknown")
    return row


def cvv_hash(hasher: Hasher, card_id: str, cvv: str) -> str:
    """The stored form of a card's CVV: a keyed hash bound to the card."""
    return hasher.secret(f"banking-card-cvv\x00{card_id}\x00{cvv}")
