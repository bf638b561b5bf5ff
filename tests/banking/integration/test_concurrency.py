"""Dozens of concurrent clients moving money among a few hot accounts on PostgreSQL: half call
the ledger's service on an engine of their own (as the ledger worker does), half send batches
to the operator's endpoint (single, two-phase and linked transfers) on the API's. Every call
answers (no deadlock, no serialization failure reaches a caller), and afterwards: posted debits
equal posted credits, no account is beyond its limit, each balance is the sum of its entries
(``verify``), what the hot accounts hold together is what they were given, and the journal has
one entry per transfer created."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from banking_kit import ADMIN, banking_on, serving, tid
from servers import Server
from sqlalchemy import func, select

from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store
from paycore.banking.ledger.domain import Kind, Transfer
from paycore.banking.ledger.verify import verify
from paycore.platform.clock import utcnow
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings

CLIENTS = 40
ROUNDS = 12
HOT = 4
FUNDING = 20_000  # cents each hot account is given
REFUSALS = {  # a post or void of a hold that was refused finds no hold
    "insufficient-funds",
    "linked-event-failed",
    "pending-transfer-not-found",
}


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str, nats_server: Server) -> Settings:
    return banking_on(tmp_path, postgres_url, nats_server.url)


def batch(rng: random.Random, hot: list[str], open_holds: list[str]) -> list[dict[str, Any]]:
    """A few transfers among the hot accounts: single ones, a hold and its post, a linked pair,
    a void of an earlier hold."""
    transfers: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        debit, credit = rng.sample(hot, 2)
        amount = rng.randint(1, 6_000)  # often more than is there: refused
        shape = rng.random()
        if shape < 0.5:
            transfers.append(_single(debit, credit, amount))
        elif shape < 0.7:
            hold = tid()
            transfers.append({**_single(debit, credit, amount), "id": hold, "kind": "pending"})
            transfers.append(
                {
                    "id": tid(),
                    "kind": "post",
                    "pending_id": hold,
                    "amount": (amount // 2 or 1) / 100,
                }
            )
        elif shape < 0.85:
            third = rng.choice([h for h in hot if h != credit])
            transfers.append({**_single(debit, credit, amount), "linked": True})
            transfers.append(_single(credit, third, amount))
        elif open_holds:
            transfers.append({"id": tid(), "kind": "void", "pending_id": open_holds.pop()})
        else:
            hold = tid()
            transfers.append({**_single(debit, credit, amount), "id": hold, "kind": "pending"})
            open_holds.append(hold)
    return transfers


def _single(debit: str, credit: str, cents: int) -> dict[str, Any]:
    return {
        "id": tid(),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": cents / 100,  # a JSON number with at most two decimals
    }


def as_transfer(given: dict[str, Any]) -> Transfer:
    cents = round(given["amount"] * 100) if "amount" in given else 0
    return Transfer(
        id=given["id"],
        kind=Kind(given.get("kind", "single")),
        debit_account_id=given.get("debit_account_id"),
        credit_account_id=given.get("credit_account_id"),
        amount=cents,
        pending_id=given.get("pending_id"),
        linked=given.get("linked", False),
    )


async def test_concurrent_clients_on_hot_accounts_keep_the_invariants(
    settings: Settings,
) -> None:
    async with serving(settings, worker=False) as http:

        async def admin(path: str, body: dict[str, Any]) -> Any:
            answer = await http.post(f"/banking/ledger/{path}", json=body, headers=ADMIN)
            assert answer.status_code in (200, 201), answer.text
            return answer.json()

        source = (await admin("accounts", {"kind": "funding"}))["id"]
        limit = "debits_must_not_exceed_credits"
        hot = [(await admin("accounts", {"kind": "hot", "limit": limit}))["id"] for _ in range(HOT)]
        funded = await admin("transfers", {"transfers": [_single(source, h, FUNDING) for h in hot]})
        assert [r["result"] for r in funded["results"]] == ["created"] * HOT

        engine = create_engine(settings.effective_database_url)  # another process's, as it were
        db = Database(engine)
        results: list[str] = []

        async def over_http(seed: int) -> None:
            rng, holds = random.Random(seed), []
            for _ in range(ROUNDS):
                body = {"transfers": batch(rng, hot, holds)}
                answer = await http.post("/banking/ledger/transfers", json=body, headers=ADMIN)
                assert answer.status_code == 200, answer.text
                results.extend(r["result"] for r in answer.json()["results"])

        async def on_the_service(seed: int) -> None:
            rng, holds = random.Random(seed), []
            for _ in range(ROUNDS):
                transfers = [as_transfer(t) for t in batch(rng, hot, holds)]
                async with db.transaction() as tx:
                    applied = await ledger.apply(tx, transfers, utcnow())
                results.extend(o.reason.value if o.reason else "created" for o in applied.outcomes)

        try:
            clients = [over_http(n) if n % 2 else on_the_service(n) for n in range(CLIENTS)]
            await asyncio.wait_for(asyncio.gather(*clients), timeout=240)
            async with engine.connect() as conn:
                report = await verify(conn)
                balances = await store.all_balances(conn)
                limits = await store.account_limits(conn)
                entries = await conn.scalar(select(func.count()).select_from(store.entries))
        finally:
            await engine.dispose()

    assert report.ok, report.problem
    assert set(results) <= {"created", *REFUSALS}, set(results)
    assert results.count("created") > CLIENTS * ROUNDS // 2  # money moved, not only refusals
    assert "insufficient-funds" in results  # the hot accounts were drained at times
    assert entries == HOT + results.count("created")
    assert sum(b.debits_posted for b in balances.values()) == sum(
        b.credits_posted for b in balances.values()
    )
    assert sum(b.debits_pending for b in balances.values()) == sum(
        b.credits_pending for b in balances.values()
    )
    assert not [a for a, b in balances.items() if b.breaks(limits[a])]
    together = sum(balances[h].posted(limits[h]) for h in hot)
    assert together == HOT * FUNDING
