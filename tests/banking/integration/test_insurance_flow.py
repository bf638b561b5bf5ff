"""Auto insurance on PostgreSQL, NATS JetStream and Redis, banking's API and worker as the
processes build them: a quote is cached in Redis for as long as it holds (read from there
first, gone once it expires) and a policy asked for with it is issued by the worker, its
premium charged once whatever the concurrent requests and redeliveries; a policy asked for
with an expired quote is rejected; the cancellation refunds the unused days exactly, once.
Each outcome crosses the broker once, and the ledger's journal and balances check out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from banking_kit import ADMIN, Customer, banking_on, eventually, serving, sign_up, tapped
from insurance_kit import data, quote_body
from redis.asyncio import Redis
from servers import Server
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.insurance import messages
from paycore.banking.insurance.cache import MemoryQuoteCache, RedisQuoteCache, key_of
from paycore.banking.insurance.consumers import GROUP
from paycore.banking.insurance.quote import (
    Coverage,
    PaymentMethod,
    Person,
    QuoteRequest,
    Rates,
    Vehicle,
)
from paycore.banking.insurance.service import PREMIUMS, Insurance
from paycore.banking.insurance.store import QuoteRecord, policies
from paycore.banking.ledger.service import bank_account_id
from paycore.banking.ledger.verify import verify
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Envelope
from paycore.platform.messaging.consumer import inbox
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings

D = Decimal
PREMIUM = 528_580  # the worked example's total (quote_body), in centavos
TOPICS = (messages.ISSUED, messages.REJECTED, messages.CANCELLED)
RATES = Rates()  # the settings' defaults
REQUEST = QuoteRequest(  # quote_body's, for quotes given at a moment of the test's choosing
    insured=Person("Ana Souza", "52998224725"),
    vehicle=Vehicle("Fiat", "Argo", 2023, "ABC1D23"),
    insured_amount=8_000_000,
    deductible=400_000,
    coverages=frozenset({Coverage.COLLISION, Coverage.THEFT, Coverage.THIRD_PARTY}),
    payment_method=PaymentMethod.PIX,
)


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str, broker_url: str, redis_server: Server) -> Settings:
    return banking_on(
        tmp_path,
        postgres_url,
        broker_url,
        redis_url=redis_server.url,
        consumer_backoff_ms=10,
        consumer_backoff_max_ms=50,
    )


@pytest.fixture
async def redis(redis_server: Server) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings.effective_database_url)
    yield eng
    await eng.dispose()


async def account_with(http: httpx.AsyncClient, who: Customer, amount: str) -> str:
    answer = await http.post("/banking/accounts", headers=who.auth)
    account_id: str = answer.json()["id"]
    moved = await http.post(
        f"/banking/accounts/{account_id}/deposits",
        content=f'{{"amount": {amount}}}',
        headers={**who.auth, "content-type": "application/json"},
    )
    assert moved.status_code == 201, moved.text
    return account_id


async def quote(http: httpx.AsyncClient, who: Customer) -> dict[str, Any]:
    answer = await http.post("/banking/insurance/quotes", json=quote_body(), headers=who.auth)
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = data(answer)
    return found


async def request(http: httpx.AsyncClient, who: Customer, quote_id: str, account: str) -> Any:
    answer = await http.post(
        "/banking/insurance/policies",
        json={"quote_id": quote_id, "account_id": account},
        headers=who.auth,
    )
    assert answer.status_code == 202, answer.text
    return data(answer)


async def settled(http: httpx.AsyncClient, who: Customer, policy_id: str) -> Any:
    """The policy once the worker has issued or rejected it (None before)."""
    answer = await http.get(f"/banking/insurance/policies/{policy_id}", headers=who.auth)
    found = data(answer)
    return None if found["status"] == "requested" else found


async def posted(http: httpx.AsyncClient, account_id: str) -> int:
    """An account's posted balance in centavos (the operator's view of any account)."""
    answer = await http.get(f"/banking/ledger/accounts/{account_id}/balance", headers=ADMIN)
    return int(data(answer)["posted"] * 100)


@pytest.mark.parametrize("broker_url", ["nats"], indirect=True)
async def test_a_quote_is_cached_in_redis_for_as_long_as_it_holds(
    settings: Settings, redis: Redis, engine: AsyncEngine
) -> None:
    async with serving(settings, worker=False) as http:
        ana = await sign_up(http, "Ana Lima", 41)
        quoted = await quote(http, ana)
        key = key_of(quoted["id"])
        cached = msgspec.json.decode(await redis.get(key), type=QuoteRecord)
        assert (cached.total, cached.insured_cpf) == (PREMIUM, "***.982.247-**")
        assert 7 * 86_400_000 - 60_000 < await redis.pttl(key) <= 7 * 86_400_000

        # read from Redis first: a value changed there shows
        changed = msgspec.structs.replace(cached, insured_name="Read from Redis")
        await redis.set(key, msgspec.json.encode(changed), px=60_000)
        path = f"/banking/insurance/quotes/{quoted['id']}"
        assert data(await http.get(path, headers=ana.auth))["insured"]["name"] == "Read from Redis"
        # without it, from the database, and cached again for what is left of its validity
        await redis.delete(key)
        assert data(await http.get(path, headers=ana.auth)) == quoted
        assert await redis.pttl(key) > 6 * 86_400_000

        # a quote given 7 days less 300 ms ago holds 300 ms more, and is in Redis as long
        me = (await http.get("/banking/customer", headers=ana.auth)).json()["id"]
        insurance = Insurance(
            Database(engine),
            rates=RATES,
            cache=RedisQuoteCache(redis),
            premiums_id=bank_account_id(PREMIUMS.name),
        )
        ending = await insurance.quote(me, REQUEST, utcnow() - timedelta(days=7, seconds=-0.3))
        assert 0 < await redis.pttl(key_of(ending.id)) <= 300
        await asyncio.sleep(0.35)
        assert await redis.exists(key_of(ending.id)) == 0  # expired: gone from Redis
        expired = data(await http.get(f"/banking/insurance/quotes/{ending.id}", headers=ana.auth))
        assert (expired["status"], expired["total"]) == ("expired", D("5285.80"))
        assert await redis.exists(key_of(ending.id)) == 0  # and not cached again


@pytest.mark.parametrize("broker_url", ["nats", "rabbitmq"], indirect=True)
async def test_policies_are_issued_once_rejected_when_expired_and_refunded_exactly(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with tapped(settings.broker_url, TOPICS) as tap, serving(settings) as http:
        ana = await sign_up(http, "Ana Lima", 42)
        checking = await account_with(http, ana, "20000.00")
        premiums = bank_account_id(PREMIUMS.name)

        # one quote, ten concurrent requests: one policy, charged once
        quoted = await quote(http, ana)
        answers = await asyncio.gather(
            *(request(http, ana, quoted["id"], checking) for _ in range(10))
        )
        [policy_id] = {a["id"] for a in answers}
        issued = await eventually(lambda: settled(http, ana, policy_id))
        assert (issued["status"], issued["premium"]) == ("issued", D("5285.80"))
        assert await posted(http, checking) == 2_000_000 - PREMIUM
        assert await posted(http, premiums) == PREMIUM

        # its issue message delivered again under another id: done, nothing charged again
        issue = messages.encode_issue(policy_id, quoted["id"])
        await tap.bus.publish([Envelope(messages.ISSUE, issue, id="issue-again", key=quoted["id"])])
        await eventually(lambda: consumed(engine, "issue-again"))
        assert await settled(http, ana, policy_id) == issued
        assert await posted(http, checking) == 2_000_000 - PREMIUM

        # a quote that expired before the policy was asked for: rejected, nothing charged
        me = (await http.get("/banking/customer", headers=ana.auth)).json()["id"]
        stale = await Insurance(
            Database(engine), rates=RATES, cache=MemoryQuoteCache(), premiums_id=premiums
        ).quote(me, REQUEST, utcnow() - timedelta(days=8))
        rejected_id = (await request(http, ana, stale.id, checking))["id"]
        rejected = await eventually(lambda: settled(http, ana, rejected_id))
        assert (rejected["status"], rejected["reason"]) == ("rejected", "quote-expired")
        assert await posted(http, checking) == 2_000_000 - PREMIUM

        # cancelled: the unused days back, once
        cancel = f"/banking/insurance/policies/{policy_id}/cancel"
        answer = await http.post(cancel, headers=ana.auth)
        assert answer.status_code == 200, answer.text
        cancelled = data(answer)
        starts, ends = (cancelled[k] for k in ("starts_at", "ends_at"))
        term = (datetime.fromisoformat(ends) - datetime.fromisoformat(starts)).days
        back = PREMIUM * (term - 1) // term  # within its first day: one day used
        assert cancelled["refund"] == D(back) / 100
        again = await http.post(cancel, headers=ana.auth)
        assert (again.status_code, again.json()["code"]) == (409, "policy-cancelled")
        assert await posted(http, checking) == 2_000_000 - PREMIUM + back
        assert await posted(http, premiums) == PREMIUM - back

        async def all_seen() -> bool:
            return (
                policy_id in tap.ids(messages.ISSUED)
                and rejected_id in tap.ids(messages.REJECTED)
                and policy_id in tap.ids(messages.CANCELLED)
            )

        await eventually(all_seen)
    assert tap.ids(messages.ISSUED) == [policy_id]  # each outcome crossed the broker once
    assert tap.ids(messages.REJECTED) == [rejected_id]
    [event] = tap.events(messages.CANCELLED)
    assert (event["refund"], event["account_id"]) == (back, checking)
    async with engine.connect() as conn:
        assert len((await conn.execute(select(policies))).all()) == 2
        report = await verify(conn)
    assert report.ok, report.problem


async def consumed(engine: AsyncEngine, message_id: str) -> bool:
    """Whether the worker's insurance consumer has taken the message."""
    async with engine.connect() as conn:
        query = select(inbox).where(
            inbox.c.consumer == f"{messages.ISSUE}.{GROUP}", inbox.c.message_id == message_id
        )
        return (await conn.execute(query)).first() is not None
