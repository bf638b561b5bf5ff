"""Pix keys and charges, the customers' use cases: register a key to one of their accounts,
list and delete theirs, look any key up (what the DICT shows a payer); create a static or a
dynamic charge on one of their keys and read it back. Payments and refunds: ``payments``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking import store as banking_store
from paycore.banking.domain import CUSTOMER_ACCOUNT
from paycore.banking.ledger.domain import Status
from paycore.banking.ledger.service import AccountClosed
from paycore.banking.ledger.store import find_account
from paycore.banking.pix import store
from paycore.banking.pix.domain import (
    ChargeOrder,
    PixKeyTaken,
    PixRules,
    TxidTaken,
    check_room,
    key_to_register,
    plan_charge,
)
from paycore.banking.pix.keys import KeyKind, parse_key
from paycore.platform.errors import NotFound
from paycore.platform.ids import uuid7
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database

PIX_KEYS_LOCK = 0x7061_7963_7069_786B  # "paycpixk": registrations take turns (the limit holds)


@dataclass(frozen=True, slots=True)
class Owner:
    """A key and who holds it, for a lookup: the name is masked by the view."""

    key: AnyRow
    name: str


class Pix:
    """Keys and charges on one database, by the bank's Pix rules."""

    def __init__(self, db: Database, rules: PixRules) -> None:
        self.db = db
        self.rules = rules

    # -- keys -----------------------------------------------------------------------------

    async def register_key(
        self, customer: AnyRow, account_id: str, kind: KeyKind, typed: str | None, now: datetime
    ) -> AnyRow:
        """Register a key to one of the customer's open checking accounts: at most
        ``KEYS_PER_ACCOUNT`` an account (registrations take turns on a lock of their own, so
        two at once do not both take the last place), unique across the platform (the key's
        unique index decides: ``PixKeyTaken``)."""
        key = key_to_register(kind, typed, customer.cpf)
        try:
            async with self.db.transaction() as tx:
                await tx.serialize(PIX_KEYS_LOCK)
                await open_account_of(tx.conn, customer.id, account_id)
                check_room(await store.count_keys(tx.conn, account_id))
                await store.insert_key(
                    tx,
                    {
                        "key": key.value,
                        "kind": key.kind.value,
                        "customer_id": customer.id,
                        "account_id": account_id,
                        "created_at": now,
                    },
                )
        except IntegrityError:
            raise await self._taken(customer.id, key.value) from None
        return await self.own_key(customer.id, key.value)

    async def _taken(self, customer_id: str, key: str) -> PixKeyTaken:
        async with self.db.connect() as conn:
            row = await store.find_key(conn, key)
        if row is not None and row.customer_id == customer_id:
            where = f"to your account {row.account_id}"
            return PixKeyTaken(f"the key {key} is registered already, {where}")
        return PixKeyTaken(f"the key {key} is registered already to another account")

    async def own_key(self, customer_id: str, typed: str) -> AnyRow:
        """The customer's key; ``NotFound`` for an unknown key and for another's alike."""
        key = parse_key(typed).value
        async with self.db.connect() as conn:
            row = await store.find_key(conn, key)
        if row is None or row.customer_id != customer_id:
            raise NotFound(f"pix key {key} is not one of yours")
        return row

    async def keys_of(self, customer_id: str) -> Sequence[AnyRow]:
        async with self.db.connect() as conn:
            return await store.keys_of(conn, customer_id)

    async def delete_key(self, customer_id: str, typed: str) -> AnyRow:
        """Delete one of the customer's keys (it is free again); the row as it was."""
        row = await self.own_key(customer_id, typed)
        async with self.db.transaction() as tx:
            await store.delete_key(tx, row.key)
        return row

    async def lookup(self, typed: str) -> Owner:
        """Any key and its owner's name; ``NotFound`` if no one holds it."""
        key = parse_key(typed).value
        async with self.db.connect() as conn:
            row = await store.find_key(conn, key)
            owner = row and await banking_store.find_customer(conn, row.customer_id)
        if row is None or owner is None:
            raise NotFound(f"pix key {key} is unknown")
        return Owner(row, owner.name)

    # -- charges --------------------------------------------------------------------------

    async def create_charge(self, customer: AnyRow, order: ChargeOrder, now: datetime) -> AnyRow:
        """A static or dynamic charge on one of the customer's keys, paid into the account the
        key is registered to, in the customer's name; ``TxidTaken`` if they have a charge with
        this txid already."""
        key = await self.own_key(customer.id, order.key)
        async with self.db.connect() as conn:
            await open_account_of(conn, customer.id, key.account_id)
        plan = plan_charge(order, key.key, customer.name, self.rules, now)
        try:
            async with self.db.transaction() as tx:
                await store.insert_charge(
                    tx,
                    {
                        "id": uuid7(),
                        "customer_id": customer.id,
                        "txid": plan.txid,
                        "kind": order.kind.value,
                        "key": key.key,
                        "account_id": key.account_id,
                        "amount": order.amount,
                        "location": plan.location,
                        "br_code": plan.br_code,
                        "expires_at": plan.expires_at,
                        "created_at": now,
                    },
                )
        except IntegrityError:
            raise TxidTaken(f"you have a charge with txid {plan.txid} already") from None
        return await self.own_charge(customer.id, plan.txid)

    async def own_charge(self, customer_id: str, txid: str) -> AnyRow:
        """The customer's charge; ``NotFound`` for an unknown txid and for another's alike."""
        async with self.db.connect() as conn:
            row = await store.own_charge(conn, customer_id, txid)
        if row is None:
            raise NotFound(f"charge {txid} is unknown")
        return row


async def open_account_of(conn: AsyncConnection, customer_id: str, account_id: str) -> AnyRow:
    """The customer's open checking account: ``NotFound`` for an unknown one and another's
    alike, ``AccountClosed`` for a closed one."""
    account = await find_account(conn, account_id)
    if account is None or account.customer_id != customer_id:
        raise NotFound(f"account {account_id} is unknown")
    if account.kind != CUSTOMER_ACCOUNT:
        raise NotFound(f"account {account_id} is not a checking account")
    if account.status == Status.CLOSED.value:
        raise AccountClosed(f"account {account_id} is closed")
    return account
