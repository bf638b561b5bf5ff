"""Banking's Pix as customers use it, over HTTP: a client of any app that serves banking's
customer routes and Pix's (``wired``: the two in process on an engine's database, as
``paycore.banking.processes`` wires them; the integration tier uses the API process itself),
with helpers to sign customers up, open and fund accounts, register keys, create charges, pay
and refund, and to check the ledger and read the events waiting in the outbox."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from cards_kit import PEPPER, LedgerReads, bearer, data, new_cpf
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.banking import api as banking_api
from paycore.banking import service
from paycore.banking.ledger.service import ensure_bank_accounts
from paycore.banking.pix import api as pix_api
from paycore.banking.pix.domain import PixRules
from paycore.banking.pix.payments import Payments
from paycore.banking.pix.service import Pix
from paycore.banking.web import BankingApi
from paycore.platform.cards import Hasher
from paycore.platform.clock import utcnow
from paycore.platform.persistence import outbox
from paycore.platform.persistence.uow import Database
from paycore.platform.web.idempotency import IdempotencyMiddleware

RULES = PixRules(ispb="99999999", location_host="pix.paycore.dev", city="SAO PAULO")


@dataclass
class PixClient:
    """Calls banking's and Pix's routes as customers do."""

    http: httpx.AsyncClient

    async def customer(self, name: str = "Ana Lima", cpf: str | None = None) -> dict[str, str]:
        """A new customer's credential headers."""
        body = {"name": name, "cpf": cpf or new_cpf()}
        answer = await self.http.post("/banking/customers", json=body)
        assert answer.status_code == 201, answer.text
        return bearer(answer.json()["secret"])

    async def account(self, who: dict[str, str], deposit: str | None = None) -> str:
        answer = await self.http.post("/banking/accounts", headers=who)
        assert answer.status_code == 201, answer.text
        account_id: str = answer.json()["id"]
        if deposit is not None:
            url = f"/banking/accounts/{account_id}/deposits"
            content = f'{{"amount": {deposit}}}'
            moved = await self.http.post(url, content=content, headers={**who, **JSON})
            assert moved.status_code == 201, moved.text
        return account_id

    async def posted(self, who: dict[str, str], account_id: str) -> Decimal:
        answer = await self.http.get(f"/banking/accounts/{account_id}/balance", headers=who)
        assert answer.status_code == 200, answer.text
        found: Decimal = data(answer)["posted"]
        return found

    async def key(
        self, who: dict[str, str], account_id: str, kind: str = "evp", **more: Any
    ) -> str:
        """A key registered to the account (a random one unless told), as the DICT keeps it."""
        body = {"account_id": account_id, "kind": kind, **more}
        answer = await self.http.post("/banking/pix/keys", json=body, headers=who)
        assert answer.status_code == 201, answer.text
        key: str = answer.json()["key"]
        return key

    async def charge(
        self, who: dict[str, str], key: str, kind: str = "dynamic", **more: Any
    ) -> Any:
        """A charge on the key (money as JSON text: ``amount="25.00"``)."""
        answer = await self.post("/banking/pix/charges", who, kind=kind, key=key, **more)
        assert answer.status_code == 201, answer.text
        return data(answer)

    async def pay(self, who: dict[str, str], **fields: Any) -> httpx.Response:
        return await self.post("/banking/pix/payments", who, **fields)

    async def paid(self, who: dict[str, str], **fields: Any) -> Any:
        answer = await self.pay(who, **fields)
        assert answer.status_code == 201, answer.text
        return data(answer)

    async def refund(self, who: dict[str, str], e2e: str, **fields: Any) -> httpx.Response:
        return await self.post(f"/banking/pix/payments/{e2e}/refunds", who, **fields)

    async def post(self, url: str, who: dict[str, str], **fields: Any) -> httpx.Response:
        """A POST of a JSON body whose ``amount``, if any, is JSON text sent as written
        (``25.00``, ``1e3``, ``"10"``), never through a float."""
        amount = fields.pop("amount", None)
        content = json.dumps(fields)
        if amount is not None:
            content = (content[:-1] + ", " if fields else "{") + f'"amount": {amount}}}'
        return await self.http.post(url, content=content, headers={**who, **JSON})


JSON = {"content-type": "application/json"}


@dataclass
class Ledger(LedgerReads):
    engine: AsyncEngine


async def ledger_whole(engine: AsyncEngine) -> None:
    """The journal's chain and every balance check out, all debits equal all credits."""
    await Ledger(engine).ledger_whole()


async def outbox_events(engine: AsyncEngine, topic: str) -> dict[str, dict[str, Any]]:
    """The events on ``topic`` waiting in the outbox (in process, nothing relays them), by
    message id, in the order they were written."""
    table = outbox.outbox
    query = select(table.c.id, table.c.body).where(table.c.topic == topic).order_by(table.c.seq)
    async with engine.connect() as conn:
        return {message_id: json.loads(body) for message_id, body in await conn.execute(query)}


@contextlib.asynccontextmanager
async def wired(engine: AsyncEngine, rules: PixRules = RULES) -> AsyncIterator[PixClient]:
    """Banking's customer routes and Pix's wired as the API process wires them."""
    db = Database(engine)
    async with db.transaction() as tx:
        bank = await ensure_bank_accounts(tx, service.BANK_ACCOUNTS, utcnow())
    writer = service.request_writer(db)
    app = served(
        [(banking_api.routes, "/banking"), (pix_api.routes, "/banking")],
        state={
            "banking": BankingApi(
                db=db,
                hasher=Hasher(PEPPER),
                admin_token="",
                cash_id=bank[service.CASH.name],
                requests=writer,
            ),
            "banking_pix": pix_api.PixApi(Pix(db, rules), Payments(db, rules), rules),
        },
        middleware=[(IdempotencyMiddleware, {"db": lambda: db, "secret": PEPPER.encode()})],
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bank"
        ) as http:
            yield PixClient(http)
    finally:
        await writer.stop()
