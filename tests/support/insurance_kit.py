"""Banking's auto insurance as customers use it, in process: the customers' API and the
insurance routes wired as ``paycore.banking.processes`` wires them, on the database of an
engine, with the banking worker's insurance consumer run by hand (``work``: the issue events
committed so far, delivered once each as a broker delivers them); helpers to sign up, fund
accounts, ask for quotes and policies."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from cards_kit import CustomerSteps, data
from memory_bus import MemoryBus
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.banking import api as banking_api
from paycore.banking import service
from paycore.banking.insurance import api as insurance_api
from paycore.banking.insurance import consumers, messages
from paycore.banking.insurance.cache import MemoryQuoteCache, QuoteCache
from paycore.banking.insurance.quote import Rates
from paycore.banking.insurance.service import INSURANCE_BANK_ACCOUNTS, PREMIUMS, Insurance
from paycore.banking.ledger import store as ledger_store
from paycore.banking.ledger.domain import Limit
from paycore.banking.ledger.service import ensure_bank_accounts
from paycore.banking.ledger.verify import verify
from paycore.banking.web import BankingApi
from paycore.platform.cards import Hasher
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Delivery, Envelope
from paycore.platform.messaging.consumer import Consumer
from paycore.platform.persistence.uow import Database

PEPPER = "insurance-test-pepper"
ADMIN = "insurance-admin-token"


def quote_body(**changes: Any) -> dict[str, Any]:
    """The worked example of docs/banking-insurance.md: Ana Souza's 2023 Fiat Argo, R$
    80,000.00 insured with a deductible of R$ 4,000.00, against collision, theft and
    third-party damage (total R$ 5,285.80); ``changes`` replace its fields."""
    body: dict[str, Any] = {
        "insured": {"name": "Ana Souza", "cpf": "529.982.247-25"},
        "vehicle": {"brand": "Fiat", "model": "Argo", "year": 2023, "plate": "ABC1D23"},
        "insured_amount": 80000,
        "deductible": 4000,
        "coverages": ["collision", "theft", "third_party"],
        "payment_method": "pix",
    }
    body.update(changes)
    return body


@dataclass
class Office(CustomerSteps):
    """Banking with insurance, in process."""

    http: httpx.AsyncClient
    engine: AsyncEngine
    db: Database
    insurance: Insurance
    bank: dict[str, str]  # the bank's own accounts' ids by name
    committed: list[Envelope]  # every event committed, in order
    consumer: Consumer
    delivered: int = 0

    async def quote(self, who: dict[str, str], **changes: Any) -> dict[str, Any]:
        answer = await self.http.post(
            "/banking/insurance/quotes", json=quote_body(**changes), headers=who
        )
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = data(answer)
        return found

    async def request(self, who: dict[str, str], quote_id: str, account_id: str) -> httpx.Response:
        return await self.http.post(
            "/banking/insurance/policies",
            json={"quote_id": quote_id, "account_id": account_id},
            headers=who,
        )

    async def policy(self, who: dict[str, str], policy_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/banking/insurance/policies/{policy_id}", headers=who)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = data(answer)
        return found

    async def cancel(self, who: dict[str, str], policy_id: str) -> httpx.Response:
        return await self.http.post(f"/banking/insurance/policies/{policy_id}/cancel", headers=who)

    def issue_events(self) -> list[Envelope]:
        return [e for e in self.committed if e.topic == messages.ISSUE]

    def events(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(e.body) for e in self.committed if e.topic == topic]

    async def work(self, *extra: Envelope) -> None:
        """The banking worker's insurance consumer takes the issue events committed since it
        last worked (and ``extra`` ones, as if published), in one batch."""
        fresh = self.issue_events()[self.delivered :]
        self.delivered += len(fresh)
        batch = [Delivery(e.topic, e.body, e.id, e.key, e.headers) for e in (*fresh, *extra)]
        if batch:
            await self.consumer.handle_batch(batch)

    async def posted(self, account_id: str) -> int:
        """An account's posted balance in cents, read from the ledger's balances."""
        async with self.engine.connect() as conn:
            row = await ledger_store.find_account(conn, account_id)
        assert row is not None
        return ledger_store.balance_of(row).posted(Limit(row.balance_limit))

    async def ledger_whole(self) -> None:
        """The journal's chain and every balance check out, all debits equal all credits."""
        async with self.engine.connect() as conn:
            report = await verify(conn)
            entries = (await conn.execute(select(ledger_store.entries.c.seq))).all()
        assert report.ok, report.problem
        assert report.entries == len(entries)


@contextlib.asynccontextmanager
async def wired(
    engine: AsyncEngine,
    *,
    cache: QuoteCache | None = None,
    rates: Rates | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[Office]:
    """Banking's customer routes and the insurance routes wired as the API process wires
    them (quotes cached in memory unless ``cache`` says otherwise); the worker's consumer
    on a clock of the test's choosing."""
    committed: list[Envelope] = []
    db = Database(engine, handoff=committed.extend)
    async with db.transaction() as tx:
        bank = await ensure_bank_accounts(
            tx, (*service.BANK_ACCOUNTS, *INSURANCE_BANK_ACCOUNTS), utcnow()
        )
    insurance = Insurance(
        db,
        rates=rates or Rates(),
        cache=cache if cache is not None else MemoryQuoteCache(),
        premiums_id=bank[PREMIUMS.name],
    )
    subscription, handler = consumers.issuing(bank[PREMIUMS.name], clock=clock)
    consumer = Consumer(subscription=subscription, handler=handler, db=db, bus=MemoryBus())
    writer = service.request_writer(db)
    app = served(
        [(banking_api.routes, "/banking"), (insurance_api.routes, "/banking")],
        state={
            "banking": BankingApi(
                db=db,
                hasher=Hasher(PEPPER),
                admin_token=ADMIN,
                cash_id=bank[service.CASH.name],
                requests=writer,
            ),
            "banking_insurance": insurance_api.InsuranceApi(insurance),
        },
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as http:
            yield Office(http, engine, db, insurance, bank, committed, consumer)
    finally:
        await writer.stop()
