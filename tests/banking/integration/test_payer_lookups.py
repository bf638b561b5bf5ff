"""A transfer request's payer looked up on each engine (SQLite, then PostgreSQL), many at once
(``service.payer_lookups``): a customer's own account gives the customer and the currency; an
account of another customer's, or none at all, gives the customer alone; an unknown secret
gives nothing. Concurrent lookups made while one query runs go together in the next one, and
each still gets its own answer."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking import service
from paycore.banking.domain import CUSTOMER_ACCOUNT
from paycore.banking.domain import CUSTOMER_LIMIT as LIMIT
from paycore.banking.ledger import service as ledger
from paycore.platform.cards import Hasher
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database

HASHER = Hasher("pepper")


async def test_payers_looked_up_together(each_engine: AsyncEngine) -> None:
    db = Database(each_engine)
    now = utcnow()
    async with db.transaction() as tx:
        people = [
            await service.sign_up(tx, name=name, cpf=cpf, hasher=HASHER, now=now)
            for name, cpf in (("Ana", "52998224725"), ("Bia", "11144477735"))
        ]
        accounts = {
            person.row.id: [
                await ledger.open_account(
                    tx, kind=CUSTOMER_ACCOUNT, limit=LIMIT, now=now, customer_id=person.row.id
                )
                for _ in range(3)
            ]
            for person in people
        }
    ana, bia = people
    ana_accounts, bia_accounts = accounts[ana.row.id], accounts[bia.row.id]
    ana_key, bia_key = HASHER.secret(ana.secret), HASHER.secret(bia.secret)
    asked = [
        *((ana_key, a) for a in ana_accounts),
        *((bia_key, b) for b in bia_accounts),
        (ana_key, bia_accounts[0]),  # Bia's account: Ana's secret does not open it
        (bia_key, "no-such-account"),
        (HASHER.secret("bk_nobody"), ana_accounts[0]),
        (ana_key, ana_accounts[0]),  # asked twice at once: both get their answer
    ]
    lookups = service.payer_lookups(each_engine)

    found = await asyncio.gather(*(lookups.one(key) for key in asked))

    assert found == [
        *((ana.row.id, a, "BRL") for a in ana_accounts),
        *((bia.row.id, b, "BRL") for b in bia_accounts),
        (ana.row.id, None, None),
        (bia.row.id, None, None),
        None,
        (ana.row.id, ana_accounts[0], "BRL"),
    ]
    # and one at a time, the same answers
    assert [await lookups.one(key) for key in asked] == found
