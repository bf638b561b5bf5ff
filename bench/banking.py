"""Benchmark of the banking ledger on PostgreSQL: transfers posted per second, fed onto the
broker and through the operator's batch endpoint, beside a floor measured in the same run; and
single transfers over HTTP at a fixed rate, with their accept and accept-to-posted latency.

    .venv/bin/python bench/banking.py [--transfers 60000] [--accounts 10000] [--hot 10]
        [--batch 2000] [--rate 1000 ...] [--duration 30] [--parts throughput single]
        [--client openloop k6] [--quick]
        [--keep DIR]

Starts its own NATS (fsync on every write) and PostgreSQL on 127.0.0.1 and seeds one database,
with banking's own code: 100 customers owning ``--accounts`` checking accounts between them,
each funded by a deposit. Every measurement runs on a fresh copy of it (a template database).

1. Ledger throughput, for two workloads: each transfer between two different accounts chosen
   uniformly among all of them ("uniform"), or among the first ``--hot`` ("hot"). Each
   measurement takes ``--transfers`` transfers (1 to 1,000 cents each) after one batch
   (``--batch``) not counted; per workload the three ways run in the order floor, broker,
   batch endpoint, batch endpoint, broker, floor:
   - broker: the transfers are published to ``banking.transfers`` as the API would (the
     message of ``messages.encode_request``), then `paycore worker --context banking` (batches
     of ``--batch``) is started and timed from the first entry it wrote until it applied the
     last (the journal's last ``seq``, plus any rejection);
   - batch endpoint: `paycore api --context banking` takes them as ``POST
     /banking/ledger/transfers`` of ``--batch`` each, two requests in flight, timed from the
     first counted request to the last answer, with `paycore worker --context banking`
     beside it publishing the entries' posted events;
   - floor: the same journal rows and balance updates written by the simplest batched insert,
     no rules: per ``--batch`` transfers, one transaction of a COPY of the entries and one
     UPDATE of the balances they move, on one asyncpg connection, from this process.
   Every paycore figure is also given as a share of the mean of its workload's two floors.
   For the broker and the batch endpoint it also says how many ``banking.transfer.posted``
   events were still to be published when the last entry was written, how long the worker
   took to publish them (``banking.posted``), and the rate counted until then ("with
   events").
2. Single transfers over HTTP: ``bench/openloop.py`` (or k6, ``--client k6``; both: one run
   each) posts ``POST /banking/transfers`` at each ``--rate`` for ``--duration`` seconds
   (after a 5 s warm-up at the same rate, not counted), as the customers from their own
   accounts to any other account, with the API and the ledger worker running. *Accept* is the
   latency the client sees (the 202 follows the commit of the request and its event; the
   open-loop generator times it from when the request was due); *accept to posted* is, per
   counted transfer, its journal entry's time minus its request's accepted time, as stored
   (both stamped on this machine).

Also reports the cores each kind of process used while measured. Writes
``bench/results/banking.json`` (``--quick``: ``banking_quick.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402
from banking_kit import ADMIN, banking_settings, cpf  # noqa: E402
from procs import Proc, paycore_process  # noqa: E402
from servers import (  # noqa: E402
    Server,
    create_database,
    free_port,
    run_sql,
    start_nats,
    start_postgres,
)

from paycore.banking import messages, posted, service  # noqa: E402
from paycore.banking import store as banking_store  # noqa: E402
from paycore.banking.domain import CUSTOMER_ACCOUNT, CUSTOMER_LIMIT, cpf_digits  # noqa: E402
from paycore.banking.ledger import service as ledger  # noqa: E402
from paycore.banking.ledger.domain import Transfer  # noqa: E402
from paycore.banking.ledger.store import ENTRY_COLUMNS, entries, published_seq  # noqa: E402
from paycore.platform.cards import Hasher  # noqa: E402
from paycore.platform.clock import utcnow  # noqa: E402
from paycore.platform.messaging.brokers import create_bus  # noqa: E402
from paycore.platform.messaging.bus import Envelope  # noqa: E402
from paycore.platform.money import json_number  # noqa: E402
from paycore.platform.persistence.db import create_engine  # noqa: E402
from paycore.platform.persistence.uow import Database  # noqa: E402
from paycore.schema import upgrade  # noqa: E402

SEED_DATABASE = "banking_seed"
CUSTOMERS = 100
FUNDS = 10**9
"""Cents deposited into each account: no transfer of a run is refused for want of funds."""
WARMUP = 5
IN_FLIGHT = 2
"""Batch requests the client keeps in flight."""
FULL: dict[str, Any] = {
    "transfers": 60_000,
    "accounts": 10_000,
    "batch": 2000,
    "duration": 30,
    "rate": [1000],
}
QUICK: dict[str, Any] = {
    "transfers": 5000,
    "accounts": 500,
    "batch": 500,
    "duration": 5,
    "rate": [100],
}
"""The sizes of a run, and of a ``--quick`` one (a CI smoke test), unless given."""
AIMS = {"uniform": 10_000, "hot": 5_000}
"""The issue's aims, transfers posted per second (and at least 40 % of the floor)."""

Move = tuple[str, str, str, int]
"""A transfer to make: its id, the debit and credit accounts, the amount in cents."""


@dataclass(frozen=True)
class Seeded:
    accounts: list[str]
    customers: list[tuple[str, list[str]]]  # each customer's secret and own accounts


# --- the seeded database -------------------------------------------------------------------


async def seed(url: str, broker_url: str, accounts: int) -> Seeded:
    """Customers and their accounts, each account funded by a deposit from the bank's cash,
    written by banking's own code; the deposits' posted events published, so that a run
    starts with none of the seed's left to publish (``published_events``)."""
    db = Database(create_engine(url))
    hasher = Hasher(banking_settings()["secret_pepper"])
    now = utcnow()
    try:
        async with db.transaction() as tx:
            bank = await ledger.ensure_bank_accounts(tx, service.BANK_ACCOUNTS, now)
            people = [
                await service.sign_up(
                    tx, name=f"Customer {n}", cpf=cpf_digits(cpf(n)), hasher=hasher, now=now
                )
                for n in range(CUSTOMERS)
            ]
            ids = [
                await ledger.open_account(
                    tx,
                    kind=CUSTOMER_ACCOUNT,
                    limit=CUSTOMER_LIMIT,
                    now=now,
                    customer_id=people[n % CUSTOMERS].row.id,
                )
                for n in range(accounts)
            ]
        deposits = [
            transfer((str(uuid.uuid4()), bank[service.CASH.name], account, FUNDS), "deposit")
            for account in ids
        ]
        for start in range(0, len(deposits), 2000):
            async with db.transaction() as tx:
                await ledger.apply(tx, deposits[start : start + 2000], now)
        await published_events(db, url, broker_url)
    finally:
        await db.engine.dispose()
    return Seeded(ids, [(p.secret, ids[n::CUSTOMERS]) for n, p in enumerate(people)])


async def published_events(db: Database, url: str, broker_url: str) -> None:
    """Run banking's posted-event publisher (``banking.posted``) until the broker has
    confirmed every entry's event and the cursor is past them."""
    bus = create_bus(broker_url)
    await bus.connect()
    publisher = asyncio.create_task(posted.Publisher(db, bus).run())
    try:
        await events_published(url)
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
        await bus.close()


def fresh_copy(pg: Server) -> str:
    """A new database, a copy of the seeded one; its URL."""
    return create_database(pg, f"bench_{time.time_ns()}", template=SEED_DATABASE)


def transfer(move: Move, code: str = "transfer") -> Transfer:
    transfer_id, debit, credit, cents = move
    return Transfer(
        id=transfer_id,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=cents,
        currency="BRL",
        code=code,
    )


def workload(accounts: Sequence[str], count: int, seed: int) -> list[Move]:
    """``count`` transfers between two different accounts of ``accounts``, chosen uniformly, of
    1 to 1,000 cents: the same accounts and amounts for the same seed, new ids every time."""
    rng = random.Random(seed)
    moves = []
    for _ in range(count):
        debit, credit = rng.sample(accounts, 2)
        moves.append((str(uuid.uuid4()), debit, credit, rng.randint(1, 1000)))
    return moves


# --- how many are applied ------------------------------------------------------------------


async def outcomes(conn: AsyncConnection) -> int:
    """Entries in the journal (its last ``seq``: it has no gaps) and refused transfers."""
    last = await conn.scalar(select(func.max(entries.c.seq)))
    refused = await conn.scalar(select(func.count()).select_from(banking_store.rejections))
    return int(last or 0) + int(refused or 0)


async def watch(url: str, expected: int, timeout: float = 600) -> dict[str, Any]:
    """``harness.watch`` of ``outcomes``: the rate from the first poll that saw a change to the
    last, and the cores used meanwhile."""
    return await harness.watch(url, outcomes, expected, timeout=timeout)


async def events_published(url: str, timeout: float = 120) -> dict[str, Any]:
    """Once the last entry is written: how many posted events were still to publish, and
    how long until the broker had confirmed them all (``banking.posted``'s cursor)."""
    engine = create_engine(url)
    started = time.monotonic()
    try:
        async with engine.connect() as conn:
            head = int(await conn.scalar(select(func.max(entries.c.seq))) or 0)
            behind = head - await published_seq(conn)
        while True:
            async with engine.connect() as conn:
                if await published_seq(conn) >= head:
                    break
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"posted events still unpublished after {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    return {"behind": behind, "caught_up_s": round(time.monotonic() - started, 2)}


async def refusals(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(banking_store.rejections))
    finally:
        await engine.dispose()
    return int(count or 0)


# --- the three ways ------------------------------------------------------------------------


def by_broker(
    pg: Server, nats: Server, moves: list[Move], batch: int, work: Path
) -> dict[str, Any]:
    """Publish the requests, then start the ledger worker and time it (see the module doc)."""
    url = fresh_copy(pg)
    envelopes = [
        Envelope(messages.REQUESTS, messages.encode_request(transfer(m)), id=m[0], key=m[0])
        for m in moves
    ]
    asyncio.run(harness.publish(nats.url, envelopes))
    env = harness.bench_env(work, database_url=url, broker_url=nats.url, banking_ledger_batch=batch)
    port = free_port()
    worker = Proc(["worker", "--context", "banking", "--port", str(port)], env, work / "worker.log")
    worker.start()
    try:
        run = asyncio.run(watch(url, len(moves)))
        ahead = ledger_batches(port)
        published = asyncio.run(events_published(url))
    finally:
        worker.stop()
    return {**run, "refused": asyncio.run(refusals(url)), "batches": ahead, "events": published}


def ledger_batches(port: int) -> dict[str, int]:
    """How many batches the worker applied ahead of their turn, and in it (its metrics)."""
    found = harness.scraped(port, "paycore_banking_ledger_batches_total")
    return {labels["applied"]: int(count) for labels, count in found}


def by_batch_endpoint(
    pg: Server, broker_url: str, moves: list[Move], batch: int, work: Path
) -> dict[str, Any]:
    """``POST /banking/ledger/transfers`` of ``batch`` transfers each, the first one alone (not
    counted), then the others ``IN_FLIGHT`` at a time."""
    url = fresh_copy(pg)
    bodies = [
        orjson.dumps(
            {
                "transfers": [
                    {
                        "id": transfer_id,
                        "debit_account_id": debit,
                        "credit_account_id": credit,
                        "amount": json_number(cents),
                        "currency": "BRL",
                    }
                    for transfer_id, debit, credit, cents in moves[start : start + batch]
                ]
            }
        )
        for start in range(0, len(moves), batch)
    ]
    env = harness.bench_env(work, database_url=url, broker_url=broker_url, **banking_settings())
    api_port = free_port()
    api = paycore_process("api", ["banking"], env, work, api_port).start()
    # the worker publishes the entries' posted events (``banking.posted``) meanwhile
    worker = paycore_process("worker", ["banking"], env, work, free_port()).start()
    try:
        results: Counter[str] = Counter()
        base = f"http://127.0.0.1:{api_port}"
        asyncio.run(post_batches(base, bodies[:1], results))
        with harness.cpu_use() as cores:
            started = time.monotonic()
            asyncio.run(post_batches(base, bodies[1:], results))
            seconds = time.monotonic() - started
        published = asyncio.run(events_published(url))
    finally:
        api.stop()
        worker.stop()
    counted = len(moves) - min(batch, len(moves))
    return {
        "counted": counted,
        "seconds": round(seconds, 2),
        "cpu_cores": cores,
        "refused": sum(n for result, n in results.items() if result != "created"),
        "events": published,
    }


async def post_batches(base: str, bodies: list[bytes], results: Counter[str]) -> None:
    todo = list(reversed(bodies))
    headers = {**ADMIN, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as http:

        async def sender() -> None:
            while todo:
                answer = await http.post("/banking/ledger/transfers", content=todo.pop())
                answer.raise_for_status()
                results.update(r["result"] for r in orjson.loads(answer.content)["results"])

        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))


FLOOR_BALANCES = """
UPDATE banking_balances AS b
SET debits_posted = b.debits_posted + m.debits, credits_posted = b.credits_posted + m.credits
FROM unnest($1::varchar[], $2::bigint[], $3::bigint[]) AS m(account_id, debits, credits)
WHERE b.account_id = m.account_id
"""
FILLER_HASH = "f" * 64
"""The floor's hashes: as wide as a real one, never computed."""
UNCOMPUTED = (0,) * 8
"""The floor's balances after each entry: no rule computes them."""


def floor(pg: Server, moves: list[Move], batch: int) -> dict[str, Any]:
    """The floor's writes (see the module doc): the first batch, then the counted ones."""
    return asyncio.run(write_floor(fresh_copy(pg), moves, batch))


async def write_floor(url: str, moves: list[Move], batch: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM banking_entries")
        seq = await floor_batch(conn, moves[:batch], seq)
        with harness.cpu_use() as cores:  # its connection open: its backend counts
            started = time.monotonic()
            for start in range(batch, len(moves), batch):
                seq = await floor_batch(conn, moves[start : start + batch], seq)
            seconds = time.monotonic() - started
    finally:
        await conn.close()
    counted = len(moves) - min(batch, len(moves))
    return {"counted": counted, "seconds": round(seconds, 2), "cpu_cores": cores, "refused": 0}


async def floor_batch(conn: asyncpg.Connection, moves: list[Move], seq: int) -> int:
    """One transaction: the entries of ``moves`` (numbered after ``seq``) by COPY and the
    balances they move by one UPDATE; returns the last entry's number."""
    now = utcnow()
    rows = []
    moved: dict[str, list[int]] = {}
    for transfer_id, debit, credit, cents in moves:
        seq += 1
        rows.append(
            (
                *(seq, transfer_id, "single", None, debit, credit, cents, "BRL"),
                *("transfer", now, None, *UNCOMPUTED, FILLER_HASH, FILLER_HASH),
            )
        )
        moved.setdefault(debit, [0, 0])[0] += cents
        moved.setdefault(credit, [0, 0])[1] += cents
    async with conn.transaction():
        await conn.copy_records_to_table("banking_entries", columns=ENTRY_COLUMNS, records=rows)
        await conn.execute(
            FLOOR_BALANCES,
            list(moved),
            [debits for debits, _ in moved.values()],
            [credits for _, credits in moved.values()],
        )
    return seq


ORDER = ("floor", "broker", "batch endpoint", "batch endpoint", "broker", "floor")
"""The ways of a workload, alternated: paycore's two between two floors."""


def throughput(
    pg: Server, nats: Server, seeded: Seeded, args: argparse.Namespace, work: Path
) -> list[dict[str, Any]]:
    """The workloads, each way twice, alternated with the floor (see the module doc)."""
    runs = []
    pools = {"uniform": seeded.accounts, "hot": seeded.accounts[: args.hot]}
    for name in args.workloads:
        pool = pools[name]
        for n, way in enumerate(ORDER):
            if way.split()[0] not in args.ways:
                continue
            moves = workload(pool, args.transfers + args.batch, seed=len(pool))
            place = work / f"{name}-{n}"
            place.mkdir(parents=True)
            if way == "floor":
                run = floor(pg, moves, args.batch)
            elif way == "broker":
                run = by_broker(pg, nats, moves, args.batch, place)
            else:
                run = by_batch_endpoint(pg, nats.url, moves, args.batch, place)
            run = {"workload": name, "accounts": len(pool), "way": way, "batch": args.batch, **run}
            run["per_s"] = round(run["counted"] / run["seconds"], 1)
            ahead = run.get("batches", {})
            also = (
                f" ({ahead.get('ahead', 0)} batches of {sum(ahead.values())} ahead)"
                if ahead
                else ""
            )
            if events := run.get("events"):
                seconds = run["seconds"] + events["caught_up_s"]
                run["with_events_per_s"] = round(run["counted"] / seconds, 1)
                also += (
                    f"; posted events: {events['behind']:,} to publish after the last entry,"
                    f" {events['caught_up_s']} s to catch up"
                )
            print(f"  {name:8} {way:15} {run['per_s']:>10,.0f} transfers/s{also}", flush=True)
            runs.append(run)
        floors = [r["per_s"] for r in runs if r["workload"] == name and r["way"] == "floor"]
        for run in runs:
            if run["workload"] == name and floors:
                run["share_of_floor"] = round(run["per_s"] / statistics.mean(floors), 3)
    return runs


# --- single transfers over HTTP ------------------------------------------------------------


def single_transfers(
    pg: Server,
    nats: Server,
    seeded: Seeded,
    rate: int,
    duration: int,
    work: Path,
    client: str = "openloop",
) -> dict[str, Any]:
    url = fresh_copy(pg)
    work.mkdir(parents=True, exist_ok=True)
    settings = banking_settings(database_url=url, broker_url=nats.url)
    with harness.api_and_worker(["banking"], work, **settings) as api:
        load = open_loop if client == "openloop" else by_k6
        opened = asyncio.run(sessions_opened(url))
        with harness.cpu_use(client=client) as cores:
            sent = load(api, seeded, rate, duration, work)
        lag = asyncio.run(posted_lag(url, sent["accepted"]))
        opened = asyncio.run(sessions_opened(url)) - opened
    return {
        "client": client,
        "target_rate": rate,
        "duration_s": duration,
        "warmup_s": WARMUP,
        **sent,
        **lag,
        "cpu_cores": cores,
        "connections_opened": opened,
    }


async def sessions_opened(url: str) -> int:
    """How many connections to the run's database PostgreSQL has opened so far (the counter
    of ``pg_stat_database``, read on a connection of its own, which it counts too)."""
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await asyncio.sleep(0.6)  # other sessions report their counts within about a second
        return int(
            await conn.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


def single_requests(seeded: Seeded, count: int) -> list[tuple[str, str, str, int]]:
    """The transfers of a run, in order: the customer's secret, the accounts from and to, the
    amount in whole reais; each from one of its customer's own accounts to any other."""
    chosen = []
    customers, accounts = seeded.customers, seeded.accounts
    for n in range(count):
        secret, own = customers[n % len(customers)]
        source = own[n // len(customers) % len(own)]
        target = accounts[n * 7919 % len(accounts)]
        if target == source:
            target = accounts[(n * 7919 + 1) % len(accounts)]
        chosen.append((secret, source, target, 1 + n % 9))
    return chosen


def open_loop(api: str, seeded: Seeded, rate: int, duration: int, work: Path) -> dict[str, Any]:
    """The run's requests sent by ``bench/openloop.py``; each one's description names the
    part it belongs to (``warmup`` or ``transfers``, the counted one)."""
    requests = work / "requests.jsonl"
    warmup = rate * WARMUP
    with requests.open("wb") as out:
        for n, (secret, source, target, reais) in enumerate(
            single_requests(seeded, rate * (WARMUP + duration))
        ):
            body = {
                "from_account_id": source,
                "to_account_id": target,
                "amount": reais,  # a JSON integer, exact
                "description": "warmup" if n < warmup else "transfers",
            }
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
            out.write(
                orjson.dumps(["POST", "/banking/transfers", headers, orjson.dumps(body).decode()])
            )
            out.write(b"\n")
    command = [sys.executable, str(ROOT / "bench" / "openloop.py"), "--url", api]
    command += ["--rate", str(rate), "--warmup", str(WARMUP), "--duration", str(duration)]
    command += ["--requests", str(requests), "--out", str(work / "openloop.json")]
    subprocess.run(command, check=True)
    found = json.loads((work / "openloop.json").read_bytes())
    counted = found["counted_statuses"]
    return {
        "accepted": found["statuses"].get("202", 0),
        "failed": found["sent"] - found["statuses"].get("202", 0),
        "dropped": 0,
        "accepted_per_s": round(counted.get("202", 0) / duration, 1),
        "accept_ms": harness.spread(found["latency_ms"]),
        "send_lag_ms": harness.spread(found["send_lag_ms"]),
    }


def by_k6(api: str, seeded: Seeded, rate: int, duration: int, work: Path) -> dict[str, Any]:
    """The run's requests sent by k6 (``bench/k6/banking_transfers.js``)."""
    seed_file = work / "seed.json"
    seed_file.write_bytes(
        orjson.dumps({"customers": seeded.customers, "accounts": seeded.accounts})
    )
    summary = work / "k6-summary.json"
    env = {
        "BASE": api,
        "RATE": str(rate),
        "DURATION": f"{duration}s",
        "WARMUP": str(WARMUP),
        "SEED": str(seed_file),
    }
    harness.run_k6(
        ROOT / "bench" / "k6" / "banking_transfers.js", env, summary=summary, quiet_output=True
    )
    metrics = json.loads(summary.read_text())["metrics"]
    counted = int(metrics["checks{scenario:transfers}"]["passes"])
    return {
        "accepted": int(metrics["checks"]["passes"]),
        "failed": int(metrics["checks"]["fails"]),
        "dropped": int(metrics.get("dropped_iterations", {}).get("count", 0)),
        "accepted_per_s": round(counted / duration, 1),
        "accept_ms": harness.k6_spread(metrics["http_req_duration{scenario:transfers}"]),
    }


async def posted_lag(url: str, accepted: int, timeout: float = 300) -> dict[str, Any]:
    """Wait until each of the ``accepted`` requests is posted or refused; the accept-to-posted
    latency of the counted ones (ms), and how many were posted, refused or never applied."""
    r, e = banking_store.requests.c, entries.c
    requested = banking_store.requests.join(entries, e.id == r.id)
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        async with engine.connect() as conn:
            while True:
                posted = int(await conn.scalar(select(func.count()).select_from(requested)) or 0)
                refused = int(
                    await conn.scalar(select(func.count()).select_from(banking_store.rejections))
                    or 0
                )
                if posted + refused >= accepted or time.monotonic() > deadline:
                    break
                await conn.rollback()  # a fresh snapshot for the next count
                await asyncio.sleep(0.2)
            query = select(r.accepted_at, e.at).select_from(requested)
            rows = (await conn.execute(query.where(r.description == "transfers"))).all()
    finally:
        await engine.dispose()
    latencies = [(row.at - row.accepted_at).total_seconds() * 1000 for row in rows]
    return {
        "posted": posted,
        "refused": refused,
        "never_applied": accepted - posted - refused,
        "accept_to_posted_ms": harness.spread(latencies),
    }


# --- the report ----------------------------------------------------------------------------


def print_throughput(runs: list[dict[str, Any]]) -> None:
    rows = []
    for name in dict.fromkeys(r["workload"] for r in runs):
        mine = [r for r in runs if r["workload"] == name]
        floors = [r["per_s"] for r in mine if r["way"] == "floor"]
        floor_mean = f"{statistics.mean(floors):,.0f}" if floors else "-"
        for way in dict.fromkeys(r["way"] for r in mine):
            same = [r for r in mine if r["way"] == way]
            rates = " / ".join(f"{r['per_s']:,.0f}" for r in same)
            shares = " / ".join(f"{r['share_of_floor']:.0%}" for r in same if floors)
            events = " / ".join(f"{r['with_events_per_s']:,.0f}" for r in same if r.get("events"))
            aim = "-" if way == "floor" else f">= {AIMS[name]:,} and 40%"
            rows.append(
                (
                    name,
                    mine[0]["accounts"],
                    way,
                    rates,
                    shares or "-",
                    floor_mean,
                    events or "-",
                    aim,
                )
            )
    columns = (
        "workload",
        "accounts",
        "way",
        "per s (runs)",
        "of floor",
        "floor mean",
        "with events/s",
        "aim",
    )
    harness.print_table(columns, rows, width=16)
    print("\nCPU while measured, in cores (largest first):")
    for run in runs:
        print(f"  {run['workload']} {run['way']}: {harness.cores_line(run['cpu_cores'])}")


def print_single(runs: list[dict[str, Any]]) -> None:
    columns = (
        "client",
        "target/s",
        "accepted/s",
        "accept p50",
        "accept p99",
        "posted p50",
        "posted p99",
    )
    rows = []
    for run in runs:
        accept, lag = run["accept_ms"], run["accept_to_posted_ms"]
        rows.append(
            (
                run.get("client", "k6"),
                run["target_rate"],
                run["accepted_per_s"],
                f"{accept['p50']} ms",
                f"{accept['p99']} ms",
                f"{lag['p50']} ms",
                f"{lag['p99']} ms",
                run["dropped"],
                run["never_applied"],
                run.get("connections_opened", "-"),
            )
        )
    harness.print_table((*columns, "dropped", "unapplied", "conns opened"), rows)
    print("\nCPU while the client ran, in cores (largest first):")
    for run in runs:
        line = harness.cores_line(run["cpu_cores"])
        print(f"  {run.get('client', 'k6')} {run['target_rate']}/s: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sizes = (
        ("--transfers", "transfers counted per measurement"),
        ("--accounts", "accounts"),
        ("--batch", "transfers per batch"),
        ("--duration", "seconds at each --rate"),
    )
    for flag, what in sizes:
        dest = flag.removeprefix("--")
        full, quick = FULL[dest], QUICK[dest]
        parser.add_argument(flag, type=int, help=f"{what} (default {full:,}; --quick {quick:,})")
    parser.add_argument(
        "--rate",
        type=int,
        nargs="+",
        help=f"single transfers/s over HTTP, one run each (default {FULL['rate'][0]:,}; "
        f"--quick {QUICK['rate'][0]:,})",
    )
    parser.add_argument("--hot", type=int, default=10, help="accounts of the hot workload")
    parser.add_argument(
        "--workloads", nargs="+", default=["uniform", "hot"], choices=["uniform", "hot"]
    )
    parser.add_argument(
        "--ways",
        nargs="+",
        default=["floor", "broker", "batch"],
        choices=["floor", "broker", "batch"],
        help="of the throughput (default all three: batch is the batch endpoint)",
    )
    parser.add_argument(
        "--parts", nargs="+", default=["throughput", "single"], choices=["throughput", "single"]
    )
    parser.add_argument(
        "--client",
        nargs="+",
        default=["openloop"],
        choices=["openloop", "k6"],
        help="what sends the single transfers (default bench/openloop.py; both: one run each)",
    )
    parser.add_argument("--quick", action="store_true", help="a small run (CI smoke)")
    parser.add_argument("--keep", help="keep logs and data in this folder instead of a temp dir")
    parser.add_argument("--out", type=Path, help="results file (default bench/results/...)")
    args = parser.parse_args()
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    name = "banking_quick.json" if args.quick else "banking.json"
    out = args.out or ROOT / "bench" / "results" / name

    with tempfile.TemporaryDirectory(prefix="paycore-bench-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        nats = start_nats(work / "nats")
        pg = start_postgres(work / "pg")
        try:
            url = create_database(pg, SEED_DATABASE)
            upgrade(url)
            began = time.monotonic()
            seeded = asyncio.run(seed(url, nats.url, args.accounts))
            run_sql(pg, SEED_DATABASE, "VACUUM ANALYZE")
            print(f"seeded {args.accounts:,} accounts in {time.monotonic() - began:.1f} s")
            runs = throughput(pg, nats, seeded, args, work) if "throughput" in args.parts else []
            single = [
                single_transfers(
                    pg, nats, seeded, rate, args.duration, work / f"single-{rate}-{client}", client
                )
                for rate in (args.rate if "single" in args.parts else [])
                for client in args.client
            ]
        finally:
            nats.stop()
            pg.stop()
    result = harness.write_results(
        out,
        "banking ledger",
        runs,
        settings={k: v for k, v in vars(args).items() if k not in ("keep", "out")},
        single_transfers=single,
    )
    if runs:
        print_throughput(runs)
    if single:
        print_single(single)
    print(f"\nmachine: {result['machine']}\nwritten to {out}")


if __name__ == "__main__":
    main()
