"""Auto insurance as customers use it, over HTTP in process, on a real SQLite file, with the
banking worker's consumer run by hand: quotes with every component (the worked examples of
docs/banking-insurance.md), every bad input a 422 naming its field with nothing stored; a
policy requested (its issue event committed with it), issued with its premium charged, or
rejected (insufficient funds, an expired quote); a quote buys one policy whatever the repeats
and redeliveries; the cancellation's pro-rata refund, once; others' quotes and policies are
404. After each flow the ledger's journal and balances check out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from insurance_kit import Office, data, quote_body, wired
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking.insurance import messages
from paycore.banking.insurance.cache import MemoryQuoteCache
from paycore.banking.insurance.quote import Coverage, Person, QuoteRequest, Vehicle
from paycore.banking.insurance.quote import PaymentMethod as Method
from paycore.banking.insurance.service import PREMIUMS
from paycore.banking.insurance.store import policies, quotes
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Envelope
from paycore.platform.messaging.deadletters import dead_letters

D = Decimal
PROBLEM = "application/problem+json"
PREMIUM = 528_580  # the worked example's total, in centavos
WORKED = {
    "premiums": {"collision": D("2800.00"), "theft": D("1440.00"), "third_party": D("960.00")},
    "base": D("5200.00"),
    "deductible_discount": D("260.00"),
    "net_base": D("4940.00"),
    "tax": D("247.00"),
    "interest": D("98.80"),
    "total": D("5285.80"),
}


@pytest.fixture
async def office(engine: AsyncEngine) -> AsyncIterator[Office]:
    async with wired(engine) as wired_office:
        yield wired_office


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    return body


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def customer_id(office: Office, who: dict[str, str]) -> str:
    answer = await office.http.get("/banking/customer", headers=who)
    found: str = answer.json()["id"]
    return found


# --- quotes --------------------------------------------------------------------------------


async def test_a_quote_shows_every_component_and_is_read_back(office: Office) -> None:
    ana = await office.customer()
    before = utcnow()
    quoted = await office.quote(ana, vehicle={**quote_body()["vehicle"], "plate": "abc-1234"})
    assert {k: quoted[k] for k in WORKED} == WORKED
    assert quoted["net_base"] == quoted["base"] - quoted["deductible_discount"]
    assert quoted["total"] == quoted["net_base"] + quoted["tax"] + quoted["interest"]
    assert (quoted["insured_amount"], quoted["deductible"]) == (D("80000.00"), D("4000.00"))
    assert quoted["coverages"] == ["collision", "theft", "third_party"]
    assert quoted["insured"] == {"name": "Ana Souza", "cpf": "***.982.247-**"}  # masked
    assert quoted["vehicle"] == {"brand": "Fiat", "model": "Argo", "year": 2023, "plate": "ABC1234"}
    assert (quoted["status"], quoted["payment_method"], quoted["currency"]) == (
        "valid",
        "pix",
        "BRL",
    )
    quoted_at = datetime.fromisoformat(quoted["quoted_at"])
    assert before - timedelta(milliseconds=1) <= quoted_at <= utcnow()
    assert datetime.fromisoformat(quoted["valid_until"]) == quoted_at + timedelta(days=7)
    again = await office.http.get(f"/banking/insurance/quotes/{quoted['id']}", headers=ana)
    assert again.status_code == 200
    assert data(again) == quoted
    async with office.engine.connect() as conn:
        row = (await conn.execute(select(quotes))).one()
    assert (row.insured_cpf, row.total, row.premium_fire) == ("52998224725", PREMIUM, None)


async def test_a_quote_in_centavos_is_rounded_as_the_docs_show(office: Office) -> None:
    """R$ 45,678.91 insured, R$ 2,500.00 deductible, collision and glass: each component
    rounded once, the interest one centavo under 2 % so that the total is the seed's rule."""
    ana = await office.customer()
    quoted = await office.quote(
        ana, insured_amount=45678.91, deductible=2500, coverages=["glass", "collision", "glass"]
    )
    assert quoted["premiums"] == {"collision": D("1598.76"), "glass": D("274.07")}
    assert [quoted[k] for k in ("base", "deductible_discount", "net_base")] == [
        D("1872.83"),
        D("102.50"),
        D("1770.33"),
    ]
    assert [quoted[k] for k in ("tax", "interest", "total")] == [
        D("88.52"),
        D("35.40"),
        D("1894.25"),
    ]


NEXT_YEAR = utcnow().year + 1
VEHICLE = quote_body()["vehicle"]
INSURED = quote_body()["insured"]


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"vehicle": {**VEHICLE, "plate": "AB1234"}}, "invalid-plate", "vehicle.plate"),
        ({"vehicle": {**VEHICLE, "plate": "ABC-1D23"}}, "invalid-plate", "vehicle.plate"),
        ({"vehicle": {**VEHICLE, "plate": "ABÇ1234"}}, "invalid-plate", "vehicle.plate"),
        ({"insured": {**INSURED, "cpf": "529.982.247-24"}}, "invalid-cpf", "insured.cpf"),
        ({"insured": {**INSURED, "cpf": "111.111.111-11"}}, "invalid-cpf", "insured.cpf"),
        ({"insured": {**INSURED, "cpf": "5299822472"}}, "invalid-cpf", "insured.cpf"),
        ({"vehicle": {**VEHICLE, "year": 1949}}, "invalid-vehicle-year", "vehicle.year"),
        (
            {"vehicle": {**VEHICLE, "year": NEXT_YEAR + 1}},
            "invalid-vehicle-year",
            "vehicle.year",
        ),
        ({"vehicle": {**VEHICLE, "year": 2020.5}}, "validation-error", "vehicle.year"),
        ({"vehicle": {**VEHICLE, "year": "2020"}}, "validation-error", "vehicle.year"),
        ({"coverages": ["collision", "flood"]}, "unknown-coverage", "coverages"),
        ({"coverages": []}, "no-coverage", "coverages"),
        ({"coverages": "collision"}, "validation-error", "coverages"),
        ({"deductible": 80000}, "invalid-deductible", "deductible"),
        ({"deductible": 80000.01}, "invalid-deductible", "deductible"),
        ({"deductible": -1}, "validation-error", "deductible"),
        ({"deductible": 0.001}, "validation-error", "deductible"),
        ({"insured_amount": 0}, "validation-error", "insured_amount"),
        ({"insured_amount": -80000}, "validation-error", "insured_amount"),
        ({"insured_amount": 80000.005}, "validation-error", "insured_amount"),
        ({"insured_amount": "80000.00"}, "validation-error", "insured_amount"),
        ({"insured_amount": True}, "validation-error", "insured_amount"),
        ({"insured_amount": 10_000_000.01}, "invalid-insured-amount", "insured_amount"),
        ({"payment_method": "cash"}, "unknown-payment-method", "payment_method"),
        ({"payment_method": "PIX"}, "unknown-payment-method", "payment_method"),
        ({"insured": {**INSURED, "name": " "}}, "validation-error", "insured.name"),
        (
            {"vehicle": {"brand": "Fiat", "year": 2023, "plate": "ABC1D23"}},
            "validation-error",
            "vehicle.model",
        ),
        ({"discount": 10}, "validation-error", "discount"),
    ],
)
async def test_a_bad_quote_request_is_a_422_naming_the_field(
    office: Office, changes: dict[str, Any], code: str, field: str
) -> None:
    ana = await office.customer()
    answer = await office.http.post(
        "/banking/insurance/quotes", json=quote_body(**changes), headers=ana
    )
    body = problem(answer, 422, code)
    named = body.get("field") or ".".join(body["errors"][0]["loc"][1:])
    assert named == field
    assert body["detail"].startswith(field + ": ")
    if code == "unknown-coverage":
        assert "flood" in body["detail"]
    assert await count(office.engine, quotes) == 0


async def test_a_quote_number_that_is_not_json_money_is_refused(office: Office) -> None:
    """Written by hand: a sub-centavo fraction and a number beyond any amount."""
    ana = await office.customer()
    for amount in ("1e-3", "1e400", "80000.0000000000000000001"):
        text = (
            '{"insured":{"name":"Ana","cpf":"529.982.247-25"},"vehicle":{"brand":"Fiat",'
            '"model":"Argo","year":2023,"plate":"ABC1D23"},"coverages":["theft"],'
            f'"payment_method":"pix","insured_amount":{amount}}}'
        )
        answer = await office.http.post(
            "/banking/insurance/quotes",
            content=text,
            headers={**ana, "content-type": "application/json"},
        )
        body = problem(answer, 422, "validation-error")
        assert body["errors"][0]["loc"] == ["body", "insured_amount"]
    assert await count(office.engine, quotes) == 0


async def test_quotes_are_the_callers_alone(office: Office) -> None:
    ana, bia = await office.customer(), await office.customer("Bia Souza")
    quoted = await office.quote(ana)
    path = f"/banking/insurance/quotes/{quoted['id']}"
    problem(await office.http.get(path, headers=bia), 404, "not-found")
    problem(await office.http.get(path), 401, "unauthorized")
    unknown = "/banking/insurance/quotes/00000000-0000-7000-8000-000000000000"
    problem(await office.http.get(unknown, headers=ana), 404, "not-found")
    malformed = await office.http.get("/banking/insurance/quotes/nope", headers=ana)
    problem(malformed, 422, "validation-error")
    refused = await office.http.post("/banking/insurance/quotes", json=quote_body())
    problem(refused, 401, "unauthorized")


async def test_a_quote_is_read_from_the_cache_then_the_database(engine: AsyncEngine) -> None:
    """The cache answers first (a value changed in it shows); without it, the database does
    and the quote is cached again; once its validity is over the cache holds it no more."""
    now = [utcnow()]
    cache = MemoryQuoteCache(clock=lambda: now[0])
    async with wired(engine, cache=cache) as office:
        ana = await office.customer()
        quoted = await office.quote(ana)
        path = f"/banking/insurance/quotes/{quoted['id']}"
        cached = await cache.get(quoted["id"])
        assert cached is not None
        assert cached.total == PREMIUM
        changed = type(cached)(**{**_fields(cached), "insured_name": "From the cache"})
        await cache.put(changed)
        assert data(await office.http.get(path, headers=ana))["insured"]["name"] == "From the cache"

        now[0] = cached.valid_until  # its validity is over (until, excluded): gone
        assert await cache.get(quoted["id"]) is None
        assert len(cache) == 0
        read = data(await office.http.get(path, headers=ana))  # from the database
        assert read["insured"]["name"] == "Ana Souza"
        assert len(cache) == 0  # not cached again: it no longer holds on the cache's clock

        now[0] -= timedelta(days=6)
        assert data(await office.http.get(path, headers=ana)) == read
        assert await cache.get(quoted["id"]) is not None  # cached again after the miss


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}


async def test_an_expired_quote_reads_as_expired_and_is_not_cached(office: Office) -> None:
    ana = await office.customer()
    record = await office.insurance.quote(
        await customer_id(office, ana), _request(), utcnow() - timedelta(days=8)
    )
    assert await office.insurance.cache.get(record.id) is None
    read = await office.http.get(f"/banking/insurance/quotes/{record.id}", headers=ana)
    assert data(read)["status"] == "expired"
    assert data(read)["total"] == D("5285.80")


def _request(insured_amount: int = 8_000_000) -> QuoteRequest:
    return QuoteRequest(
        insured=Person("Ana Souza", "52998224725"),
        vehicle=Vehicle("Fiat", "Argo", 2023, "ABC1D23"),
        insured_amount=insured_amount,
        deductible=400_000 if insured_amount > 400_000 else 0,
        coverages=frozenset({Coverage.COLLISION, Coverage.THEFT, Coverage.THIRD_PARTY}),
        payment_method=Method.PIX,
    )


# --- policies ------------------------------------------------------------------------------


async def test_a_policy_is_requested_then_issued_its_premium_charged(office: Office) -> None:
    ana = await office.customer()
    checking = await office.account(ana, deposit="6000.00")
    quoted = await office.quote(ana)
    answer = await office.request(ana, quoted["id"], checking)
    assert answer.status_code == 202, answer.text
    requested = data(answer)
    assert (requested["status"], requested["premium"], requested["quote_id"]) == (
        "requested",
        D("5285.80"),
        quoted["id"],
    )
    assert requested["charge_id"] is None
    [issue] = office.issue_events()  # committed with the request
    assert messages.decode_issue(issue.body).policy_id == requested["id"]

    await office.work()
    issued = await office.policy(ana, requested["id"])
    assert issued["status"] == "issued"
    starts, ends = (datetime.fromisoformat(issued[k]) for k in ("starts_at", "ends_at"))
    assert ends == starts.replace(year=starts.year + 1)
    assert issued["charge_id"] is not None
    assert issued["coverages"] == ["collision", "theft", "third_party"]
    assert issued["vehicle"]["plate"] == "ABC1D23"
    assert await office.posted(checking) == 600_000 - PREMIUM
    assert await office.posted(office.bank[PREMIUMS.name]) == PREMIUM
    [event] = office.events(messages.ISSUED)
    assert (event["id"], event["premium"], event["charge_id"]) == (
        issued["id"],
        PREMIUM,
        issued["charge_id"],
    )
    listed = await office.http.get("/banking/insurance/policies", headers=ana)
    assert data(listed) == [issued]
    await office.ledger_whole()


async def test_a_policy_the_account_cannot_pay_is_rejected_with_the_ledgers_reason(
    office: Office,
) -> None:
    ana = await office.customer()
    checking = await office.account(ana, deposit="5285.79")  # a centavo short
    quoted = await office.quote(ana)
    policy_id = data(await office.request(ana, quoted["id"], checking))["id"]
    await office.work()
    rejected = await office.policy(ana, policy_id)
    assert (rejected["status"], rejected["reason"]) == ("rejected", "insufficient-funds")
    assert rejected["detail"]
    assert (rejected["charge_id"], rejected["starts_at"]) == (None, None)
    assert await office.posted(checking) == PREMIUM - 1
    assert [e["reason"] for e in office.events(messages.REJECTED)] == ["insufficient-funds"]
    assert office.events(messages.ISSUED) == []
    problem(await office.cancel(ana, policy_id), 409, "policy-not-issued")
    await office.ledger_whole()


async def test_a_policy_asked_for_with_an_expired_quote_is_rejected(office: Office) -> None:
    ana = await office.customer()
    checking = await office.account(ana, deposit="6000.00")
    stale = await office.insurance.quote(
        await customer_id(office, ana), _request(), utcnow() - timedelta(days=7, seconds=1)
    )
    answer = await office.request(ana, stale.id, checking)
    assert answer.status_code == 202  # the worker decides, at the moment asked for
    await office.work()
    rejected = await office.policy(ana, data(answer)["id"])
    assert (rejected["status"], rejected["reason"]) == ("rejected", "quote-expired")
    assert "held until" in rejected["detail"]
    assert await office.posted(checking) == 600_000
    assert office.events(messages.ISSUED) == []


async def test_a_quote_buys_one_policy_whatever_the_repeats(office: Office) -> None:
    ana = await office.customer()
    checking = await office.account(ana, deposit="20000.00")
    other = await office.account(ana)
    quoted = await office.quote(ana)
    answers = await asyncio.gather(*(office.request(ana, quoted["id"], checking) for _ in range(8)))
    assert {a.status_code for a in answers} == {202}
    assert len({data(a)["id"] for a in answers}) == 1
    problem(await office.request(ana, quoted["id"], other), 409, "quote-taken")
    assert len(office.issue_events()) == 1

    first = office.issue_events()[0]
    again = Envelope(first.topic, first.body, id="redelivered-with-another-id", key=first.key)
    await office.work(again)  # in the batch of the first: the policy is issued by one
    policy_id = data(answers[0])["id"]
    issued = await office.policy(ana, policy_id)
    assert issued["status"] == "issued"
    later = Envelope(first.topic, first.body, id="and-yet-another-id", key=first.key)
    await office.work(later, later)  # once issued: done, nothing happens
    await office.work(first)  # the first message delivered again: the inbox knows it
    assert await office.policy(ana, policy_id) == issued
    assert await count(office.engine, dead_letters) == 0  # each message done, none refused
    assert await office.posted(checking) == 2_000_000 - PREMIUM  # charged once
    assert len(office.events(messages.ISSUED)) == 1
    replay = await office.request(ana, quoted["id"], checking)  # issued now: as it is
    assert (replay.status_code, data(replay)["status"]) == (202, "issued")
    assert await count(office.engine, policies) == 1
    await office.ledger_whole()


async def test_a_bad_issue_message_is_a_dead_letter(office: Office) -> None:
    ana = await office.customer()
    quoted = await office.quote(ana)
    unknown = messages.encode_issue("00000000-0000-7000-8000-000000000001", quoted["id"])
    await office.work(
        Envelope(messages.ISSUE, b'{"v":1,"policy_id":', id="truncated"),
        Envelope(messages.ISSUE, b'{"v":2,"policy_id":"x","quote_id":"y"}', id="other-version"),
        Envelope(messages.ISSUE, unknown, id="no-such-policy"),
    )
    async with office.engine.connect() as conn:
        rows = (await conn.execute(select(dead_letters).order_by(dead_letters.c.message_id))).all()
    assert [(r.message_id, r.attempts) for r in rows] == [
        ("no-such-policy", 1),
        ("other-version", 1),
        ("truncated", 1),
    ]
    assert "no policy 00000000-0000-7000-8000-000000000001" in rows[0].error
    assert "not an insurance issue message" in rows[1].error


async def test_bad_policy_requests_are_refused_and_nothing_is_asked_for(office: Office) -> None:
    ana, bia = await office.customer(), await office.customer("Bia Souza")
    mine = await office.account(ana, deposit="6000.00")
    hers = await office.account(bia, deposit="6000.00")
    closed = await office.account(ana)
    assert (await office.http.delete(f"/banking/accounts/{closed}", headers=ana)).is_success
    quoted, her_quote = await office.quote(ana), await office.quote(bia)
    unknown = "00000000-0000-7000-8000-000000000000"
    problem(await office.request(ana, unknown, mine), 404, "not-found")
    problem(await office.request(ana, her_quote["id"], mine), 404, "not-found")
    problem(await office.request(ana, quoted["id"], hers), 404, "not-found")
    problem(await office.request(ana, quoted["id"], unknown), 404, "not-found")
    problem(await office.request(ana, quoted["id"], closed), 409, "account-closed")
    bad = await office.request(ana, "not-a-uuid", mine)
    assert problem(bad, 422, "validation-error")["errors"][0]["loc"] == ["body", "quote_id"]
    extra = await office.http.post(
        "/banking/insurance/policies",
        json={"quote_id": quoted["id"], "account_id": mine, "premium": 1},
        headers=ana,
    )
    problem(extra, 422, "validation-error")
    problem(await office.request({}, quoted["id"], mine), 401, "unauthorized")
    assert await count(office.engine, policies) == 0
    assert office.issue_events() == []


# --- cancelling ----------------------------------------------------------------------------


async def test_cancelling_refunds_the_unused_days_once(office: Office) -> None:
    ana, bia = await office.customer(), await office.customer("Bia Souza")
    checking = await office.account(ana, deposit="6000.00")
    policy_id = data(await office.request(ana, (await office.quote(ana))["id"], checking))["id"]
    problem(await office.cancel(ana, policy_id), 409, "policy-not-issued")  # requested only
    await office.work()
    problem(await office.cancel(bia, policy_id), 404, "not-found")

    answer = await office.cancel(ana, policy_id)
    assert answer.status_code == 200, answer.text
    cancelled = data(answer)
    starts, ends = (datetime.fromisoformat(cancelled[k]) for k in ("starts_at", "ends_at"))
    term = (ends - starts).days  # 365 or 366; within its first day: one day used
    back = PREMIUM * (term - 1) // term
    assert cancelled["status"] == "cancelled"
    assert cancelled["refund"] == D(back) / 100
    assert await office.posted(checking) == 600_000 - PREMIUM + back
    assert await office.posted(office.bank[PREMIUMS.name]) == PREMIUM - back

    problem(await office.cancel(ana, policy_id), 409, "policy-cancelled")
    assert await office.posted(checking) == 600_000 - PREMIUM + back
    [event] = office.events(messages.CANCELLED)
    assert (event["refund"], event["refund_id"]) == (back, cancelled["refund_id"])
    await office.ledger_whole()


async def test_the_refund_of_the_worked_example(engine: AsyncEngine) -> None:
    """Issued on 10 January 2027 at 00:00 UTC, cancelled on 20 April at 12:00: 101 days used
    of 365, R$ 3,823.15 back (docs/banking-insurance.md)."""
    start = datetime(2027, 1, 10, tzinfo=UTC)
    async with wired(engine, clock=lambda: start) as office:
        ana = await office.customer()
        checking = await office.account(ana, deposit="6000.00")
        policy_id = data(await office.request(ana, (await office.quote(ana))["id"], checking))["id"]
        await office.work()
        row = await office.insurance.cancel(
            await customer_id(office, ana), policy_id, datetime(2027, 4, 20, 12, tzinfo=UTC)
        )
        assert (row.starts_at, row.ends_at) == (start, datetime(2028, 1, 10, tzinfo=UTC))
        assert row.refund == 382_315
        assert await office.posted(checking) == 600_000 - PREMIUM + 382_315
        await office.ledger_whole()


async def test_a_premium_rounded_to_nothing_charges_and_refunds_nothing(office: Office) -> None:
    ana = await office.customer()
    checking = await office.account(ana)
    quoted = await office.quote(ana, insured_amount=0.01, deductible=0)
    assert quoted["total"] == 0
    policy_id = data(await office.request(ana, quoted["id"], checking))["id"]
    await office.work()
    issued = await office.policy(ana, policy_id)
    assert (issued["status"], issued["charge_id"]) == ("issued", None)
    cancelled = data(await office.cancel(ana, policy_id))
    assert (cancelled["status"], cancelled["refund"], cancelled["refund_id"]) == (
        "cancelled",
        0,
        None,
    )
    await office.ledger_whole()
