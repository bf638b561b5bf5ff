"""Transfers asked for over HTTP, applied by the ledger worker through a real broker (NATS
JetStream, RabbitMQ, Kafka, Redis Streams), on PostgreSQL: banking's API and worker as the
processes build them. Each transfer's status goes from pending to posted, or to rejected with
its reason; ``banking.transfer.posted`` and ``banking.transfer.rejected`` cross the broker once
per transfer; a replay of an id is the same transfer, another request under it a 409; a
message that is no transfer is a dead letter and the worker goes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from banking_kit import (
    Customer,
    banking_on,
    deposit,
    eventually,
    open_account,
    serving,
    sign_up,
    tapped,
    tid,
)
from prometheus_client import REGISTRY
from servers import Server
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.banking import messages
from paycore.banking.ledger.domain import single
from paycore.bootstrap import build_worker
from paycore.platform.messaging.bus import Envelope
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.db import create_engine
from paycore.platform.settings import Settings

UNKNOWN_ACCOUNT = "00000000-0000-7000-8000-00000000abcd"


@pytest.fixture(params=["nats", "rabbitmq", "kafka", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    server: Server = request.getfixturevalue(f"{request.param}_server")
    return server.url


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str, broker_url: str) -> Settings:
    return banking_on(
        tmp_path, postgres_url, broker_url, consumer_backoff_ms=10, consumer_backoff_max_ms=50
    )


async def test_transfers_are_applied_by_the_worker_through_the_broker(
    settings: Settings, broker_url: str
) -> None:
    accepted_before = accepted_count()
    async with tapped(broker_url) as tap, serving(settings) as http:
        ana, bia = await sign_up(http, "Ana Lima", 1), await sign_up(http, "Bia Souza", 2)
        a, b = await open_account(http, ana), await open_account(http, bia)
        closed = await open_account(http, bia)
        assert (await http.delete(f"/banking/accounts/{closed}", headers=bia.auth)).is_success
        await deposit(http, ana, a, 100)

        async def transfer(to: str, amount: Any, transfer_id: str) -> dict[str, Any]:
            body = {"from_account_id": a, "to_account_id": to, "amount": amount, "id": transfer_id}
            answer = await http.post("/banking/transfers", json=body, headers=ana.auth)
            assert answer.status_code == 202, answer.text
            found: dict[str, Any] = answer.json()
            return found

        posted, short, nowhere, to_closed = tid(), tid(), tid(), tid()
        accepted = await transfer(b, 30.25, posted)
        assert accepted["status"] in ("pending", "posted")  # the worker may be quicker
        assert (accepted["amount"], accepted["from_account_id"]) == (30.25, a)
        await transfer(b, 500, short)
        await transfer(UNKNOWN_ACCOUNT, 1, nowhere)
        await transfer(closed, 1, to_closed)

        statuses = await eventually(
            lambda: statuses_of(http, ana, [posted, short, nowhere, to_closed])
        )
        assert statuses[posted]["status"] == "posted"
        assert statuses[posted]["posted_at"] is not None
        assert [
            (statuses[t]["status"], statuses[t]["reason"]) for t in (short, nowhere, to_closed)
        ] == [
            ("rejected", "insufficient-funds"),
            ("rejected", "credit-account-not-found"),
            ("rejected", "account-closed"),
        ]

        # the same transfer again is the same transfer; its id with other fields is refused
        again = await transfer(b, 30.25, posted)
        assert (again["id"], again["status"]) == (posted, "posted")
        other = {"from_account_id": a, "to_account_id": b, "amount": 30.26, "id": posted}
        reused = await http.post("/banking/transfers", json=other, headers=ana.auth)
        assert (reused.status_code, reused.json()["code"]) == (409, "transfer-id-reused")
        # Bia sees none of Ana's transfers
        peek = await http.get(f"/banking/transfers/{posted}", headers=bia.auth)
        assert peek.status_code == 404

        balances = {x: (await http.get(f"/banking/accounts/{x}/balance", headers=who.auth)).json()
                    for x, who in ((a, ana), (b, bia))}  # fmt: skip
        assert (balances[a]["posted"], balances[a]["available"]) == (69.75, 69.75)
        assert balances[b]["posted"] == 30.25

        # a message that is no transfer is a dead letter at once; the worker goes on
        await tap.bus.publish([Envelope(messages.REQUESTS, b'{"v":1,"id":', id=tid())])
        await tap.bus.publish(
            [Envelope(messages.REQUESTS, b'{"v": 1, "id": "x", "amount": "1"}', id=tid())]
        )
        after = tid()
        await transfer(b, 0.75, after)
        assert (await eventually(lambda: statuses_of(http, ana, [after])))[after][
            "status"
        ] == "posted"
        letters = await eventually(lambda: banking_dead_letters(settings, 2))
        assert all(row.attempts == 1 for row in letters)

        # each outcome crossed the broker once
        expected_posted = {posted, after}
        expected_rejected = {short, nowhere, to_closed}

        async def all_seen() -> bool:
            return expected_posted <= set(tap.ids(messages.POSTED)) and expected_rejected <= set(
                tap.ids(messages.REJECTED)
            )

        await eventually(all_seen)
    assert accepted_count() == accepted_before + 5  # replays and refusals at the door not counted
    mine = expected_posted | expected_rejected
    assert sorted(i for i in tap.ids(messages.POSTED) if i in mine) == sorted(expected_posted)
    assert sorted(i for i in tap.ids(messages.REJECTED) if i in mine) == sorted(expected_rejected)
    [event] = [e for e in tap.events(messages.POSTED) if e["id"] == posted]
    assert (event["amount"], event["debit_account_id"], event["credit_account_id"]) == (3025, a, b)
    assert (event["kind"], event["currency"], event["code"]) == ("single", "BRL", "transfer")
    [event] = [e for e in tap.events(messages.REJECTED) if e["id"] == short]
    assert event["reason"] == "insufficient-funds"


def accepted_count() -> float:
    return REGISTRY.get_sample_value("paycore_banking_transfers_accepted_total") or 0.0


async def statuses_of(http: Any, customer: Customer, ids: list[str]) -> dict[str, Any] | None:
    """Each transfer's view, once none is pending any more."""
    found = {}
    for transfer_id in ids:
        answer = await http.get(f"/banking/transfers/{transfer_id}", headers=customer.auth)
        assert answer.status_code == 200, answer.text
        found[transfer_id] = answer.json()
    return None if any(v["status"] == "pending" for v in found.values()) else found


async def banking_dead_letters(settings: Settings, count: int) -> list[Any] | None:
    engine: AsyncEngine = create_engine(settings.effective_database_url)
    try:
        async with engine.connect() as conn:
            query = select(dead_letters).where(dead_letters.c.topic == messages.REQUESTS)
            rows = list((await conn.execute(query)).all())
    finally:
        await engine.dispose()
    return rows if len(rows) >= count else None


@pytest.mark.parametrize("broker_url", ["nats"], indirect=True)
async def test_a_transfer_is_pending_until_the_worker_applies_it(
    settings: Settings, broker_url: str
) -> None:
    async with serving(settings, worker=False) as http:
        ana = await sign_up(http, "Ana Lima", 3)
        a, b = await open_account(http, ana), await open_account(http, ana)
        await deposit(http, ana, a, 10)
        waiting = tid()
        body = {"from_account_id": a, "to_account_id": b, "amount": 4, "id": waiting}
        answer = await http.post("/banking/transfers", json=body, headers=ana.auth)
        assert (answer.status_code, answer.json()["status"]) == (202, "pending")
        found = await http.get(f"/banking/transfers/{waiting}", headers=ana.auth)
        assert (found.json()["status"], found.json()["posted_at"]) == ("pending", None)
        balance = await http.get(f"/banking/accounts/{a}/balance", headers=ana.auth)
        assert balance.json()["posted"] == 10  # nothing moves before the ledger applies it

        worker = build_worker(settings, ["banking"])
        async with worker.router.lifespan_context(worker):
            done = await eventually(lambda: statuses_of(http, ana, [waiting]))
        assert done[waiting]["status"] == "posted"
        balance = await http.get(f"/banking/accounts/{b}/balance", headers=ana.auth)
        assert balance.json()["posted"] == 4


@pytest.mark.parametrize("broker_url", ["nats"], indirect=True)
async def test_a_request_that_comes_again_changes_nothing(
    settings: Settings, broker_url: str
) -> None:
    """The ledger's subscription keeps no inbox: a request is known by its transfer id. One
    posted before is not posted twice, and one refused before stays refused even once the
    account could pay, whatever message brings it again (a redelivery keeps its message id,
    a producer's retry need not)."""
    async with tapped(broker_url) as tap, serving(settings) as http:
        ana, bia = await sign_up(http, "Ana Lima", 1), await sign_up(http, "Bia Souza", 2)
        a, b = await open_account(http, ana), await open_account(http, bia)
        await deposit(http, ana, a, 10)

        async def transfer(amount: Any, transfer_id: str) -> None:
            body = {"from_account_id": a, "to_account_id": b, "amount": amount, "id": transfer_id}
            answer = await http.post("/banking/transfers", json=body, headers=ana.auth)
            assert answer.status_code == 202, answer.text

        posted, short, last = tid(), tid(), tid()
        await transfer(4, posted)
        await transfer(50, short)
        await eventually(lambda: statuses_of(http, ana, [posted, short]))
        await deposit(http, ana, a, 100)  # now the refused one could be paid

        for transfer_id, cents in ((posted, 400), (short, 5000)):
            request = messages.encode_request(single(transfer_id, a, b, cents, "transfer"))
            await tap.bus.publish([Envelope(messages.REQUESTS, request, id=tid())])
        await transfer(0.01, last)  # handled after both: once it is posted, so were they
        statuses = await eventually(lambda: statuses_of(http, ana, [posted, short, last]))

        assert [statuses[t]["status"] for t in (posted, short, last)] == [
            "posted",
            "rejected",
            "posted",
        ]
        assert statuses[short]["reason"] == "insufficient-funds"
        balance = (await http.get(f"/banking/accounts/{a}/balance", headers=ana.auth)).json()
        assert balance["posted"] == 105.99  # 10 - 4 + 100 - 0.01
        await eventually(lambda: _seen(tap, {posted, last}, {short}))
    mine = {posted, short, last}
    assert sorted(i for i in tap.ids(messages.POSTED) if i in mine) == sorted([posted, last])
    assert [i for i in tap.ids(messages.REJECTED) if i in mine] == [short]


async def _seen(tap: Any, posted: set[str], rejected: set[str]) -> bool:
    return posted <= set(tap.ids(messages.POSTED)) and rejected <= set(tap.ids(messages.REJECTED))
