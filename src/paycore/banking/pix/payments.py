"""Pix payments and refunds (devoluções), settled at once through the ledger in the request's
unit of work (ADR 0015): a payment from one of the payer's accounts to the account of a key or
of one of this bank's dynamic charges, by a BR Code or by a key and an amount; a refund by the
payee of all or part of what is left of a payment.

Each runs under the ledger's lock, taken first: the checks (the end-to-end id not used, the
charge not paid nor expired, what is left to refund) and the transfer they lead to commit
before the next writer reads anything, so fifty payers of one charge are one payment and
forty-nine ``charge-already-paid``. The ledger's ``banking.transfer.posted`` and Pix's own
``banking.pix.settled`` / ``banking.pix.refunded`` events commit with them (the outbox)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking import messages
from paycore.banking import service as banking
from paycore.banking import store as banking_store
from paycore.banking.ledger.domain import Reason, TransferRefused, single, units
from paycore.banking.ledger.service import LEDGER_LOCK
from paycore.banking.pix import store
from paycore.banking.pix.brcode import decode
from paycore.banking.pix.domain import (
    AmountMismatch,
    ChargeAlreadyPaid,
    ChargeExpired,
    EndToEndIdReused,
    InvalidPayment,
    NotThePayee,
    PixRules,
    ReturnIdReused,
    UnknownCharge,
    amount_to_pay,
    amount_to_refund,
    check_end_to_end_id,
    check_return_id,
    location_of,
    new_end_to_end_id,
    new_return_id,
)
from paycore.banking.pix.keys import parse_key
from paycore.platform.errors import NotFound
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database, Transaction

CURRENCY = "BRL"
PAYMENT_CODE, REFUND_CODE = "pix", "pix-refund"
"""The ledger codes of a payment's transfer and a refund's."""


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """A payment as the payer asks for it: a BR Code (``br_code``) or a key with an amount
    (centavos), from one of their accounts, under an end-to-end id of theirs or a new one."""

    from_account_id: str
    br_code: str | None = None
    key: str | None = None
    amount: int | None = None
    end_to_end_id: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """What a payment pays, as its order says: a key or a dynamic charge's location, the
    amount the code carries, the code's txid."""

    key: str | None = None
    location: str | None = None
    code_amount: int | None = None
    txid: str | None = None


@dataclass(frozen=True, slots=True)
class Payee:
    """Where a payment goes, once looked up: the account, its holder, what it pays."""

    account_id: str
    customer_id: str
    key: str
    amount: int
    txid: str | None = None
    charge_id: str | None = None


class Payments:
    """Payments and refunds on one database, by the bank's Pix rules."""

    def __init__(self, db: Database, rules: PixRules) -> None:
        self.db = db
        self.rules = rules

    # -- payments -------------------------------------------------------------------------

    async def pay(self, payer: AnyRow, order: PaymentOrder, now: datetime) -> AnyRow:
        """Settle a payment (see the module doc); the same end-to-end id with the same fields
        is the original payment, with others ``EndToEndIdReused``."""
        e2e = (
            new_end_to_end_id(self.rules.ispb, now)
            if order.end_to_end_id is None
            else check_end_to_end_id(order.end_to_end_id, self.rules.ispb)
        )
        target = self._target(order)
        fingerprint = _hash(
            "payment",
            payer.id,
            order.from_account_id,
            (order.br_code or "").strip(),
            target.key or "",
            str(order.amount),
        )
        await banking.own_account(self.db, payer.id, order.from_account_id)
        try:
            await self._settle(payer, order, target, e2e, fingerprint, now)
        except IntegrityError:  # a unique index caught what the lock did not: once more
            await self._settle(payer, order, target, e2e, fingerprint, now)
        return await self.payment_of(payer.id, e2e)

    def _target(self, order: PaymentOrder) -> Target:
        if (order.br_code is None) == (order.key is None):
            raise InvalidPayment(
                "give `br_code` (the copy-and-paste code) or `key` and `amount`, one of the two"
            )
        if order.key is not None:
            return Target(key=parse_key(order.key).value)
        assert order.br_code is not None
        code = decode(order.br_code.strip())
        if code.url is not None:
            return Target(
                location=location_of(code.url, self.rules.location_host), code_amount=code.amount
            )
        return Target(key=code.key, code_amount=code.amount, txid=code.txid)

    async def _settle(
        self,
        payer: AnyRow,
        order: PaymentOrder,
        target: Target,
        e2e: str,
        fingerprint: str,
        now: datetime,
    ) -> None:
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            done = await store.find_payment(tx.conn, e2e)
            if done is not None:
                if done.request_hash != fingerprint:
                    raise EndToEndIdReused(f"payment {e2e} exists with other fields")
                return
            payee = await self._payee(tx.conn, target, order.amount, now)
            if payee.account_id == order.from_account_id:
                detail = "a Pix payment goes from an account to another"
                raise TransferRefused(Reason.ACCOUNTS_MUST_BE_DIFFERENT, detail)
            transfer_id = f"pix-{e2e}"
            await self._move(
                tx,
                transfer_id,
                order.from_account_id,
                payee.account_id,
                payee.amount,
                PAYMENT_CODE,
                now,
            )
            payee_row = await banking_store.find_customer(tx.conn, payee.customer_id)
            assert payee_row is not None
            row = {
                "end_to_end_id": e2e,
                "request_hash": fingerprint,
                "transfer_id": transfer_id,
                "payer_customer_id": payer.id,
                "payer_account_id": order.from_account_id,
                "payer_name": payer.name,
                "payee_customer_id": payee.customer_id,
                "payee_account_id": payee.account_id,
                "payee_name": payee_row.name,
                "amount": payee.amount,
                "key": payee.key,
                "txid": payee.txid,
                "charge_id": payee.charge_id,
                "settled_at": now,
            }
            await store.insert_payment(tx, row)
            tx.publish(
                messages.PIX_SETTLED,
                messages.encode_pix_settled(
                    end_to_end_id=e2e,
                    transfer_id=transfer_id,
                    payer_account_id=order.from_account_id,
                    payee_account_id=payee.account_id,
                    amount=payee.amount,
                    key=payee.key,
                    txid=payee.txid,
                    at=now,
                ),
                key=e2e,
                message_id=f"pix-settled-{e2e}",
            )

    async def _payee(
        self, conn: AsyncConnection, target: Target, asked: int | None, now: datetime
    ) -> Payee:
        if target.key is not None:
            key = await store.find_key(conn, target.key)
            if key is None:
                raise NotFound(f"pix key {target.key} is unknown")
            where = "the code" if target.code_amount is not None else "the key"
            amount = amount_to_pay(asked, target.code_amount, where=where)
            return Payee(key.account_id, key.customer_id, key.key, amount, target.txid)
        assert target.location is not None
        charge = await store.charge_at(conn, target.location)
        if charge is None:
            raise UnknownCharge(f"no charge of this bank is at location {target.location}")
        if charge.paid_by is not None:
            raise ChargeAlreadyPaid(f"charge {charge.txid} was paid already")
        if now >= charge.expires_at:
            raise ChargeExpired(f"charge {charge.txid} expired at {charge.expires_at.isoformat()}")
        if target.code_amount not in (None, charge.amount):
            raise AmountMismatch(
                f"the code's amount (54) is {units(target.code_amount or 0)} but charge "
                f"{charge.txid} asks for {units(charge.amount)}: the code was changed"
            )
        amount = amount_to_pay(asked, charge.amount, where=f"charge {charge.txid}")
        return Payee(
            charge.account_id, charge.customer_id, charge.key, amount, charge.txid, charge.id
        )

    async def payment_of(self, customer_id: str, e2e: str) -> AnyRow:
        """A payment the customer paid or received; ``NotFound`` for anyone else."""
        async with self.db.connect() as conn:
            row = await store.find_payment(conn, e2e)
        return _party(row, customer_id, e2e)

    # -- refunds --------------------------------------------------------------------------

    async def refund(
        self, customer_id: str, e2e: str, asked: int | None, return_id: str | None, now: datetime
    ) -> AnyRow:
        """Return all or part of what is left of a payment the customer received, to the
        account it came from; the same return id with the same fields is the original refund,
        with others ``ReturnIdReused``."""
        rid = (
            new_return_id(self.rules.ispb, now)
            if return_id is None
            else check_return_id(return_id, self.rules.ispb)
        )
        fingerprint = _hash("refund", customer_id, e2e, str(asked))
        try:
            await self._return(customer_id, e2e, asked, rid, fingerprint, now)
        except IntegrityError:  # a unique index caught what the lock did not: once more
            await self._return(customer_id, e2e, asked, rid, fingerprint, now)
        async with self.db.connect() as conn:
            found = await store.find_refund(conn, rid)
        assert found is not None
        return found

    async def _return(
        self,
        customer_id: str,
        e2e: str,
        asked: int | None,
        rid: str,
        fingerprint: str,
        now: datetime,
    ) -> None:
        async with self.db.transaction() as tx:
            await tx.serialize(LEDGER_LOCK)
            payment = _party(await store.find_payment(tx.conn, e2e), customer_id, e2e)
            if payment.payee_customer_id != customer_id:
                raise NotThePayee(f"payment {e2e} is refunded by its receiver")
            done = await store.find_refund(tx.conn, rid)
            if done is not None:
                if done.request_hash != fingerprint:
                    raise ReturnIdReused(f"refund {rid} exists with other fields")
                return
            amount = amount_to_refund(payment.amount, payment.refunded, asked)
            transfer_id = f"pix-{rid}"
            await self._move(
                tx,
                transfer_id,
                payment.payee_account_id,
                payment.payer_account_id,
                amount,
                REFUND_CODE,
                now,
            )
            row = {
                "id": rid,
                "end_to_end_id": e2e,
                "request_hash": fingerprint,
                "transfer_id": transfer_id,
                "amount": amount,
                "at": now,
            }
            await store.insert_refund(tx, row)
            tx.publish(
                messages.PIX_REFUNDED,
                messages.encode_pix_refunded(
                    return_id=rid,
                    end_to_end_id=e2e,
                    transfer_id=transfer_id,
                    payer_account_id=payment.payer_account_id,
                    payee_account_id=payment.payee_account_id,
                    amount=amount,
                    refunded=payment.refunded + amount,
                    at=now,
                ),
                key=e2e,
                message_id=f"pix-refunded-{rid}",
            )

    async def refunds_of(self, customer_id: str, e2e: str) -> tuple[AnyRow, Sequence[AnyRow]]:
        """A payment the customer paid or received, and its refunds, oldest first."""
        async with self.db.connect() as conn:
            payment = _party(await store.find_payment(conn, e2e), customer_id, e2e)
            return payment, await store.refunds_of(conn, e2e)

    # -- helpers --------------------------------------------------------------------------

    async def _move(
        self,
        tx: Transaction,
        transfer_id: str,
        debit: str,
        credit: str,
        amount: int,
        code: str,
        now: datetime,
    ) -> None:
        await banking.apply_in(tx, single(transfer_id, debit, credit, amount, code, CURRENCY), now)


def _party(row: AnyRow | None, customer_id: str, e2e: str) -> AnyRow:
    if row is None or customer_id not in (row.payer_customer_id, row.payee_customer_id):
        raise NotFound(f"payment {e2e} is unknown")
    return row


def _hash(*fields: str) -> str:
    """What tells a replay (the same fields) from a reuse of an id (others)."""
    return hashlib.sha256("\x00".join(fields).encode()).hexdigest()
