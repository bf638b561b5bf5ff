"""Banking's loans as customers use them, in process: the customers' API and the loans' routes
wired as ``paycore.banking.processes`` wires them, on the database of an engine (SQLite in the
unit tier), with the banking worker's two parts driven by hand: the consumer deciding the
applications written to the outbox (through the platform's consumer, inbox and all) and the
scheduled collection at a date of the test's choosing. Helpers to sign up, open and fund
accounts, apply, read the ledger and the outbox."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
from cards_kit import LedgerReads, bearer, new_cpf
from memory_bus import MemoryBus
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.banking import api as banking_api
from paycore.banking import service
from paycore.banking.ledger.service import ensure_bank_accounts
from paycore.banking.loans import api as loans_api
from paycore.banking.loans import consumers, messages
from paycore.banking.loans.collector import Collected, Collector
from paycore.banking.loans.domain import Policy
from paycore.banking.loans.service import LOAN_BANK_ACCOUNTS, Loans, bank_accounts
from paycore.banking.web import BankingApi
from paycore.platform.cards import Hasher
from paycore.platform.clock import utcnow
from paycore.platform.ids import uuid7
from paycore.platform.messaging.bus import Delivery
from paycore.platform.messaging.consumer import Consumer
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database

PEPPER = "loans-test-pepper"
RATE = Decimal("0.0199")
POLICY = Policy(
    max_income_share=Decimal("0.30"),
    min_principal=10_000,
    max_principal=5_000_000,
    min_term=1,
    max_term=60,
    max_open=3,
)


@dataclass
class Lender(LedgerReads):
    http: httpx.AsyncClient
    engine: AsyncEngine
    db: Database
    bank: dict[str, str]  # the bank's own accounts' ids by name
    policy: Policy
    decided: set[str] = field(default_factory=set)  # outbox messages handed to the consumer

    async def customer(self, name: str = "Ana Lima") -> dict[str, str]:
        """A new customer's credential headers."""
        answer = await self.http.post("/banking/customers", json={"name": name, "cpf": new_cpf()})
        assert answer.status_code == 201, answer.text
        return bearer(answer.json()["secret"])

    async def account(self, who: dict[str, str], deposit: int = 0) -> str:
        """A new checking account, with ``deposit`` centavos in it."""
        answer = await self.http.post("/banking/accounts", headers=who)
        assert answer.status_code == 201, answer.text
        account_id: str = answer.json()["id"]
        if deposit:
            await self.move(account_id, deposit, deposit=True)
        return account_id

    async def move(self, account_id: str, cents: int, *, deposit: bool) -> None:
        """Cash into (or out of) the account through the service."""
        await service.cash_movement(
            self.db,
            self.bank[service.CASH.name],
            account_id,
            transfer_id=uuid7(),
            amount=cents,
            deposit=deposit,
            now=utcnow(),
        )

    async def apply(self, who: dict[str, str], account_id: str, **terms: Any) -> httpx.Response:
        """POST an application (``principal`` and ``monthly_income`` in reais, as JSON numbers;
        defaults: 1,000.00 in 12 Price instalments on an income of 5,000.00)."""
        body = {
            "account_id": account_id,
            "principal": 1000,
            "term": 12,
            "system": "price",
            "monthly_income": 5000,
            **terms,
        }
        return await self.http.post("/banking/loans/applications", json=body, headers=who)

    async def applied(self, who: dict[str, str], account_id: str, **terms: Any) -> str:
        answer = await self.apply(who, account_id, **terms)
        assert answer.status_code == 202, answer.text
        application_id: str = answer.json()["id"]
        return application_id

    async def decide(self, now: datetime | None = None) -> None:
        """The banking worker's consumer takes every application message not taken yet."""
        subscription, handler = consumers.applications(
            policy=self.policy,
            bank=bank_accounts(self.bank),
            clock=lambda: now or utcnow(),
        )
        consumer = Consumer(subscription=subscription, handler=handler, db=self.db, bus=MemoryBus())
        deliveries = [
            Delivery(messages.APPLICATIONS, body, message_id, key, {})
            for message_id, key, body in await self.outbox(messages.APPLICATIONS)
            if message_id not in self.decided
        ]
        self.decided |= {d.id for d in deliveries}
        if deliveries:
            await consumer.handle_batch(deliveries)

    def lending(self) -> Loans:
        """The customers' loan use cases, as the API has them."""
        return Loans(self.db, bank=bank_accounts(self.bank), monthly_rate=RATE)

    async def collect(self, now: datetime) -> Collected:
        """One pass of the scheduled collection, as if it were ``now``."""
        collector = Collector(self.db, bank_accounts(self.bank), poll_seconds=1, clock=lambda: now)
        return await collector.once(now)

    async def outbox(self, topic: str) -> list[tuple[str, str | None, bytes]]:
        """The events written for ``topic``: message id, key, body, in order."""
        query = (
            select(outbox.c.id, outbox.c.key, outbox.c.body)
            .where(outbox.c.topic == topic)
            .order_by(outbox.c.seq)
        )
        async with self.engine.connect() as conn:
            return [(row.id, row.key, row.body) for row in await conn.execute(query)]

    async def events(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, _, body in await self.outbox(topic)]


@contextlib.asynccontextmanager
async def wired(engine: AsyncEngine, policy: Policy = POLICY) -> AsyncIterator[Lender]:
    """Banking's customer routes and the loans' routes wired as the API process wires them."""
    db = Database(engine)
    async with db.transaction() as tx:
        bank = await ensure_bank_accounts(
            tx, (*service.BANK_ACCOUNTS, *LOAN_BANK_ACCOUNTS), utcnow()
        )
    hasher = Hasher(PEPPER)
    writer = service.request_writer(db)
    loans = Loans(db, bank=bank_accounts(bank), monthly_rate=RATE)
    app = served(
        [(banking_api.routes, "/banking"), (loans_api.routes, "/banking")],
        state={
            "banking": BankingApi(
                db=db,
                hasher=hasher,
                admin_token="loans-admin",
                cash_id=bank[service.CASH.name],
                requests=writer,
            ),
            "banking_loans": loans_api.LoansApi(loans),
        },
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as http:
            yield Lender(http, engine, db, bank, policy)
    finally:
        await writer.stop()


def statuses(statement: dict[str, Any]) -> list[str]:
    return [i["status"] for i in statement["installments"]]
