"""The card network's calls: authorize (a hold on the card's funding account, approved or
declined and recorded either way), capture (post the hold, all or less), void (release it).

Each runs in one unit of work under the ledger's lock (``LEDGER_LOCK``): an authorization
reads the card (its status, its CVV's hash) and holds the money in one serialized step, so
once a block has committed no authorization gets past it, and the same authorization id
sent twice at once makes one hold.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

from paycore.banking import metrics
from paycore.banking import service as banking
from paycore.banking.cards import store
from paycore.banking.cards.domain import (
    AuthorizationDeclined,
    AuthorizationIdReused,
    CardState,
    CardStatus,
    Expiry,
    capture_id,
    decline_of,
    hold_id,
    void_id,
)
from paycore.banking.cards.service import cvv_hash
from paycore.banking.ledger.domain import Kind, Reason, Transfer
from paycore.banking.ledger.service import LEDGER_LOCK
from paycore.platform.cards import Hasher
from paycore.platform.errors import NotFound
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database, Transaction


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


class Network:
    """The card network's use cases: holds last ``hold_seconds`` unless captured or voided,
    and land in the bank's card settlement account (``settlement_id``)."""

    def __init__(
        self, db: Database, *, hasher: Hasher, hold_seconds: int, settlement_id: str
    ) -> None:
        self.db = db
        self._hasher = hasher
        self._hold_seconds = hold_seconds
        self._settlement = settlement_id

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
            expected = cvv_hash(self._hasher, card.id, asked.cvv)
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
            timeout_seconds=self._hold_seconds,
        )
        outcome = await banking.outcome_in(tx, hold, now)
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
            await banking.apply_in(tx, transfer, now)

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
