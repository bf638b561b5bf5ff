"""Banking's cards as customers and the card network use them, in process: the customers' API
and the cards' routes wired as ``paycore.banking.processes`` wires them, on the database of an
engine (SQLite in the unit tier, PostgreSQL in the integration tier); helpers to sign up,
open and fund accounts, issue cards and authorize."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.banking import api as banking_api
from paycore.banking import service
from paycore.banking.cards import api as cards_api
from paycore.banking.cards.network import Network
from paycore.banking.cards.service import (
    CARD_BANK_ACCOUNTS,
    CARD_SETTLEMENT,
    CREDIT_LINES,
    CardRules,
    Cards,
)
from paycore.banking.domain import cpf_check_digits
from paycore.banking.ledger import store as ledger_store
from paycore.banking.ledger.domain import Limit
from paycore.banking.ledger.service import ensure_bank_accounts
from paycore.banking.ledger.verify import verify
from paycore.banking.web import BankingApi
from paycore.platform.cards import Hasher, Keyring, new_keys
from paycore.platform.clock import utcnow
from paycore.platform.ids import uuid7
from paycore.platform.money import to_cents
from paycore.platform.persistence.uow import Database
from paycore.platform.web.idempotency import IdempotencyMiddleware

ADMIN = "cards-admin-token"
SERVICE = "cards-service-token"
PEPPER = "cards-test-pepper"
BIN = "650485"
RULES = CardRules(bin=BIN, years=5, max_credit_limit=5_000_000)
HOLD_SECONDS = 7 * 24 * 3600
_cpfs = itertools.count(100_000_001)


def new_cpf() -> str:
    base = f"{next(_cpfs):09d}"
    return base + cpf_check_digits(base)


def data(answer: httpx.Response) -> Any:
    """An answer's JSON, its money exact (``Decimal``)."""
    return json.loads(answer.content, parse_float=Decimal)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NETWORK = bearer(SERVICE)


class LedgerReads:
    """What a kit with an ``engine`` reads of the ledger."""

    engine: AsyncEngine

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


class CustomerSteps:
    """What a kit with ``http``, ``db`` and the bank's accounts (``bank``) does for its
    customers: sign them up and open (and fund) their accounts."""

    http: httpx.AsyncClient
    db: Database
    bank: dict[str, str]

    async def customer(self, name: str = "Ana Lima") -> dict[str, str]:
        """A new customer's credential headers."""
        answer = await self.http.post("/banking/customers", json={"name": name, "cpf": new_cpf()})
        assert answer.status_code == 201, answer.text
        return bearer(answer.json()["secret"])

    async def account(self, who: dict[str, str], deposit: str | None = None) -> str:
        answer = await self.http.post("/banking/accounts", headers=who)
        assert answer.status_code == 201, answer.text
        account_id: str = answer.json()["id"]
        if deposit is not None:
            await self.deposit(who, account_id, deposit)
        return account_id

    async def deposit(self, who: dict[str, str], account_id: str, amount: str) -> None:
        """Cash into the account through the service (the deposit route is the customers'
        API's to test)."""
        await service.cash_movement(
            self.db,
            self.bank[service.CASH.name],
            account_id,
            transfer_id=uuid7(),
            amount=to_cents(amount),
            deposit=True,
            now=utcnow(),
        )


@dataclass
class Bank(LedgerReads, CustomerSteps):
    http: httpx.AsyncClient
    engine: AsyncEngine
    db: Database
    cards: Cards
    network: Network
    bank: dict[str, str]  # the bank's own accounts' ids by name

    async def balance(self, who: dict[str, str], account_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/banking/accounts/{account_id}/balance", headers=who)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = data(answer)
        return found

    async def issue(
        self, who: dict[str, str], account_id: str, kind: str = "debit", **more: Any
    ) -> dict[str, Any]:
        answer = await self.http.post(
            "/banking/cards", json={"account_id": account_id, "kind": kind, **more}, headers=who
        )
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = data(answer)
        return found

    async def card(self, who: dict[str, str], card_id: str) -> dict[str, Any]:
        answer = await self.http.get(f"/banking/cards/{card_id}", headers=who)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = data(answer)
        return found

    async def authorize(self, card: dict[str, Any], amount: str, **changes: Any) -> httpx.Response:
        """The card network asks to authorize ``amount`` (JSON text, sent as written: ``25.00``,
        ``"10"``, ``1e3`` …) on ``card`` (as issued: its number, expiry and CVV)."""
        body = {
            "id": uuid7(),
            "number": card["full_number"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "cvv": card["cvv"],
            "merchant": "Padaria Real",
            **changes,
        }
        content = json.dumps(body)[:-1] + f', "amount": {amount}}}'
        return await self.http.post(
            "/banking/card-authorizations",
            content=content,
            headers={**NETWORK, "content-type": "application/json"},
        )

    async def approved(self, card: dict[str, Any], amount: str, **changes: Any) -> dict[str, Any]:
        answer = await self.authorize(card, amount, **changes)
        assert answer.status_code == 201, answer.text
        found: dict[str, Any] = data(answer)
        assert found["result"] == "approved", found
        return found

    async def capture(self, authorization_id: str, amount: str | None = None) -> httpx.Response:
        body = "{}" if amount is None else f'{{"amount": {amount}}}'
        return await self.http.post(
            f"/banking/card-authorizations/{authorization_id}/capture",
            content=body,
            headers={**NETWORK, "content-type": "application/json"},
        )

    async def void(self, authorization_id: str) -> httpx.Response:
        return await self.http.post(
            f"/banking/card-authorizations/{authorization_id}/void", headers=NETWORK
        )


@contextlib.asynccontextmanager
async def wired(
    engine: AsyncEngine, rules: CardRules = RULES, hold_seconds: int = HOLD_SECONDS
) -> AsyncIterator[Bank]:
    """Banking's customer routes and the cards' routes wired as the API process wires them."""
    db = Database(engine)
    async with db.transaction() as tx:
        bank = await ensure_bank_accounts(
            tx, (*service.BANK_ACCOUNTS, *CARD_BANK_ACCOUNTS), utcnow()
        )
    hasher = Hasher(PEPPER)
    writer = service.request_writer(db)
    keyring = Keyring.parse(new_keys())
    lines, settlement = bank[CREDIT_LINES.name], bank[CARD_SETTLEMENT.name]
    cards = Cards(db, keyring=keyring, hasher=hasher, rules=rules, credit_lines_id=lines)
    network = Network(db, hasher=hasher, hold_seconds=hold_seconds, settlement_id=settlement)
    app = served(
        [(banking_api.routes, "/banking"), (cards_api.routes, "/banking")],
        state={
            "banking": BankingApi(
                db=db,
                hasher=hasher,
                admin_token=ADMIN,
                cash_id=bank[service.CASH.name],
                requests=writer,
            ),
            "banking_cards": cards_api.CardsApi(
                cards, network, admin_token=ADMIN, service_token=SERVICE
            ),
        },
        middleware=[(IdempotencyMiddleware, {"db": lambda: db, "secret": PEPPER.encode()})],
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as http:
            yield Bank(http, engine, db, cards, network, bank)
    finally:
        await writer.stop()
