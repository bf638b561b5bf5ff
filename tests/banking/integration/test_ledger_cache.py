"""A ledger writer's known accounts (``ledger.cache``) on each engine: a batch after the
writer's own reads only the accounts it does not know, and whatever came between two of its
batches (another writer's transfer, a status change, its own batch rolled back) makes it read
them all again, so no refusal or balance is ever decided on a stale account. The same for a
batch applied ahead of its turn, against what the batch before leaves: whatever came between
has it applied again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from banking_kit import ADMIN, ADMIN_TOKEN, deposit, open_account, serving, sign_up, tid
from prometheus_client import REGISTRY
from servers import Server
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from web_kit import migrated_settings

from paycore.banking import messages, service
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger import store
from paycore.banking.ledger.cache import Accounts
from paycore.banking.ledger.domain import Account, Balance, Kind, Limit, Reason, Status, Transfer
from paycore.banking.ledger.verify import verify
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings

CUSTOMER = Limit.DEBITS_MUST_NOT_EXCEED_CREDITS


class Reads:
    """The account ids each batch read from the database."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[set[str]] = []
        read = store.ledger_accounts

        async def counted(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, Account]:
            self.batches.append(set(ids))
            return await read(conn, ids)

        monkeypatch.setattr(store, "ledger_accounts", counted)


async def opened(db: Database, limit: Limit = CUSTOMER, kind: str = "customer") -> str:
    async with db.transaction() as tx:
        return await ledger.open_account(tx, kind=kind, limit=limit, now=utcnow())


def single(debit: str, credit: str, amount: int) -> Transfer:
    return Transfer(tid(), Kind.SINGLE, debit, credit, amount)


async def apply(db: Database, known: Accounts | None, *transfers: Transfer) -> list[Reason | None]:
    async with db.transaction() as tx:
        applied = await ledger.apply(tx, transfers, utcnow(), known)
    return [o.reason for o in applied.outcomes]


async def balance(db: Database, account_id: str) -> Balance:
    async with db.connect() as conn:
        row = await store.find_account(conn, account_id)
    assert row is not None
    return store.balance_of(row)


async def funded(db: Database, cents: int) -> tuple[str, str, str]:
    """A cash account and two customer accounts, the first holding ``cents``."""
    cash, a, b = await opened(db, Limit.NONE, "cash"), await opened(db), await opened(db)
    assert await apply(db, None, single(cash, a, cents)) == [None]
    return cash, a, b


async def after_one_batch(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> tuple[Database, Accounts, Reads, str, str, str]:
    """A writer's cache after its batch of 100 from ``a`` (1,000 deposited from ``cash``) to
    ``b``: the database, the cache, its reads so far, and the three accounts."""
    db = Database(engine)
    cash, a, b = await funded(db, 1_000)
    known, reads = Accounts(), Reads(monkeypatch)
    assert await apply(db, known, single(a, b, 100)) == [None]
    return db, known, reads, cash, a, b


async def test_the_next_batch_reads_only_the_accounts_it_does_not_know(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(each_engine)
    _, a, b = await funded(db, 1_000)
    c = await opened(db)
    known, reads = Accounts(), Reads(monkeypatch)

    assert await apply(db, known, single(a, b, 600)) == [None]
    assert await apply(db, known, single(b, a, 100), single(b, c, 200)) == [None, None]
    assert await apply(db, known, single(a, b, 600)) == [Reason.INSUFFICIENT_FUNDS]

    assert reads.batches == [{a, b}, {c}, set()]
    assert await balance(db, a) == Balance(debits_posted=600, credits_posted=1_100)
    assert await balance(db, b) == Balance(debits_posted=300, credits_posted=600)
    async with db.connect() as conn:
        assert (await verify(conn)).ok


async def test_another_writers_transfer_in_between_is_seen(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, reads, cash, a, b = await after_one_batch(each_engine, monkeypatch)

    assert await apply(db, None, single(a, cash, 800)) == [None]  # another writer: 100 left

    assert await apply(db, known, single(a, b, 200)) == [Reason.INSUFFICIENT_FUNDS]
    assert reads.batches == [{a, b}, {a, cash}, {a, b}]
    assert await balance(db, a) == Balance(debits_posted=900, credits_posted=1_000)


async def test_a_status_change_in_between_is_seen(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, reads, _, a, b = await after_one_batch(each_engine, monkeypatch)

    async with db.transaction() as tx:  # moves no entry
        await ledger.set_status(tx, b, Status.BLOCKED, utcnow())

    assert await apply(db, known, single(a, b, 100)) == [Reason.ACCOUNT_BLOCKED]
    async with db.transaction() as tx:
        await ledger.set_status(tx, b, Status.OPEN, utcnow())
    assert await apply(db, known, single(a, b, 100)) == [None]
    assert reads.batches == [{a, b}, {b}, {a, b}, {b}, {a, b}]  # {b}: set_status reads it
    assert await balance(db, b) == Balance(credits_posted=200)


async def test_a_batch_rolled_back_leaves_nothing_known(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, reads, _, a, b = await after_one_batch(each_engine, monkeypatch)

    async def rolled_back(transfer: Transfer) -> None:
        async with db.transaction() as tx:
            await ledger.apply(tx, [transfer], utcnow(), known)
            raise RuntimeError("after the batch, before its commit")

    with pytest.raises(RuntimeError, match="after the batch"):
        await rolled_back(single(a, b, 700))

    assert await apply(db, known, single(a, b, 900)) == [None]  # 900 left, not 200
    assert reads.batches == [{a, b}, set(), {a, b}]
    assert await balance(db, a) == Balance(debits_posted=1_000, credits_posted=1_000)


# --- a batch applied ahead of its turn (``ledger.ahead_of_turn``) -------------------------
# Made while the batch before is being written, against the accounts that batch leaves; taken
# in its turn only if the book read under the lock is the one it was made against.


async def in_turn(
    db: Database, known: Accounts, speculation: ledger.Speculation | None, *transfers: Transfer
) -> tuple[bool, list[Reason | None]]:
    """Apply ``transfers`` in their turn: whether the speculation was taken, and the reasons."""
    async with db.transaction() as tx:
        applied = await ledger.apply(tx, list(transfers), utcnow(), known, speculation)
    taken = speculation is not None and applied is speculation.applied
    return taken, [o.reason for o in applied.outcomes]


async def test_made_while_the_batch_before_is_written_and_taken_in_its_turn(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, reads, _, a, b = await after_one_batch(each_engine, monkeypatch)
    second = [single(a, b, 300)]
    third = [single(a, b, 500), single(a, b, 200), single(b, a, 50)]

    async with db.transaction() as tx:  # the second batch, applied, not yet committed
        await ledger.apply(tx, second, utcnow(), known)
        ahead = await ledger.ahead_of_turn(known, third, utcnow(), db)
    assert ahead is not None
    assert [o.reason for o in ahead.applied.outcomes] == [None, Reason.INSUFFICIENT_FUNDS, None]

    assert await in_turn(db, known, ahead, *third) == (
        True,
        [None, Reason.INSUFFICIENT_FUNDS, None],
    )
    assert reads.batches == [{a, b}, set(), set()]
    assert await balance(db, a) == Balance(debits_posted=900, credits_posted=1_050)
    assert await balance(db, b) == Balance(debits_posted=50, credits_posted=900)
    async with db.connect() as conn:
        assert (await verify(conn)).ok


async def test_the_batch_before_rolled_back_has_it_applied_again(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, _, _, a, b = await after_one_batch(each_engine, monkeypatch)
    nxt = [single(a, b, 500)]

    made: list[ledger.Speculation | None] = []

    async def rolled_back() -> None:
        async with db.transaction() as tx:
            await ledger.apply(tx, [single(a, b, 800)], utcnow(), known)
            made.append(await ledger.ahead_of_turn(known, nxt, utcnow(), db))
            raise RuntimeError("the batch before fails before its commit")

    with pytest.raises(RuntimeError, match="before its commit"):
        await rolled_back()
    ahead = made[0]
    assert ahead is not None
    assert ahead.applied.outcomes[0].reason is Reason.INSUFFICIENT_FUNDS  # 100 left, had it held

    assert await in_turn(db, known, ahead, *nxt) == (False, [None])  # 900 are there
    assert await balance(db, a) == Balance(debits_posted=600, credits_posted=1_000)


async def test_another_writer_or_a_status_change_between_has_it_applied_again(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, _, cash, a, b = await after_one_batch(each_engine, monkeypatch)

    ahead = await ledger.ahead_of_turn(known, [single(a, b, 500)], utcnow(), db)
    assert ahead is not None
    assert await apply(db, None, single(a, cash, 800)) == [None]  # another writer: 100 left
    assert await in_turn(db, known, ahead, *ahead.transfers) == (False, [Reason.INSUFFICIENT_FUNDS])

    ahead = await ledger.ahead_of_turn(known, [single(a, b, 50)], utcnow(), db)
    assert ahead is not None
    async with db.transaction() as tx:
        await ledger.set_status(tx, b, Status.BLOCKED, utcnow())
    assert await in_turn(db, known, ahead, *ahead.transfers) == (False, [Reason.ACCOUNT_BLOCKED])
    assert await balance(db, b) == Balance(credits_posted=100)  # the first batch's only


async def test_an_id_seen_before_has_it_applied_again(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, _, _, a, b = await after_one_batch(each_engine, monkeypatch)
    first = single(a, b, 300)
    assert await in_turn(db, known, None, first) == (False, [None])

    ahead = await ledger.ahead_of_turn(known, [first, single(a, b, 100)], utcnow(), db)
    assert ahead is not None
    assert ahead.applied.outcomes[0].replay is False  # the speculation did not know the id
    taken, reasons = await in_turn(db, known, ahead, *ahead.transfers)
    assert (taken, reasons) == (False, [None, None])
    assert await balance(db, a) == Balance(debits_posted=500, credits_posted=1_000)  # not 800


async def test_an_account_not_kept_is_read_as_committed_and_checked_in_its_turn(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, reads, cash, a, b = await after_one_batch(each_engine, monkeypatch)
    assert await ledger.ahead_of_turn(Accounts(), [single(a, b, 1)], utcnow(), db) is None

    ahead = await ledger.ahead_of_turn(known, [single(a, cash, 1)], utcnow(), db)
    if each_engine.dialect.name == "sqlite":  # its one connection: not read ahead of the turn
        assert ahead is None
        return
    assert ahead is not None  # cash, not kept, read without the lock
    assert await in_turn(db, known, ahead, *ahead.transfers) == (True, [None])
    assert reads.batches == [{a, b}, {cash}, set()]  # and kept: not read again in the turn

    c = await opened(db)
    ahead = await ledger.ahead_of_turn(known, [single(a, c, 1)], utcnow(), db)
    assert ahead is not None
    async with db.transaction() as tx:  # another writer moves c after it was read
        await ledger.set_status(tx, c, Status.BLOCKED, utcnow())
    assert await in_turn(db, known, ahead, *ahead.transfers) == (False, [Reason.ACCOUNT_BLOCKED])


async def test_the_worker_says_which_batches_it_took_ahead(
    each_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, known, _, cash, a, b = await after_one_batch(each_engine, monkeypatch)

    def counted(applied: str) -> float:
        labels = {"applied": applied}
        return REGISTRY.get_sample_value("paycore_banking_ledger_batches_total", labels) or 0.0

    async def requests(ahead_of: Transfer | None, *transfers: Transfer) -> None:
        bodies = [messages.encode_request(t) for t in transfers]
        ahead = await service.ahead_of_turn(bodies, utcnow(), known, db)
        if ahead_of is not None:  # another writer comes between
            assert await apply(db, None, ahead_of) == [None]
        async with db.transaction() as tx:
            await service.apply_requests(tx, bodies, utcnow(), known, ahead)

    def brl(debit: str, credit: str, amount: int) -> Transfer:  # as a request carries it
        return replace(single(debit, credit, amount), currency="BRL")

    before = counted("ahead"), counted("in_turn")
    await requests(None, brl(a, b, 10), brl(b, a, 5))
    await requests(single(cash, a, 1), brl(a, b, 10))
    assert (counted("ahead"), counted("in_turn")) == (before[0] + 1, before[1] + 1)
    assert await balance(db, a) == Balance(debits_posted=120, credits_posted=1_006)


@pytest.fixture
def settings(tmp_path: Path, nats_server: Server) -> Settings:
    return migrated_settings(tmp_path, nats_server.url, admin_token=ADMIN_TOKEN)


async def test_the_batch_endpoint_sees_what_came_between_its_batches(settings: Settings) -> None:
    """Over HTTP (the API as ``paycore api`` builds it, SQLite): the operator's batch endpoint
    keeps its process's accounts between requests, and a block, an unblock and a customer's
    deposit in between are each seen by the next batch."""
    async with serving(settings, worker=False) as http:
        ana, bia = await sign_up(http, "Ana Lima", 21), await sign_up(http, "Bia Souza", 22)
        a, b = await open_account(http, ana), await open_account(http, bia)
        await deposit(http, ana, a, 50)

        async def batch(amount: int) -> str:
            move = {"id": tid(), "debit_account_id": a, "credit_account_id": b, "amount": amount}
            answer = await http.post(
                "/banking/ledger/transfers", json={"transfers": [move]}, headers=ADMIN
            )
            assert answer.status_code == 200, answer.text
            result: str = answer.json()["results"][0]["result"]
            return result

        assert await batch(10) == "created"
        assert (await http.post(f"/banking/ledger/accounts/{b}/block", headers=ADMIN)).is_success
        assert await batch(1) == "account-blocked"
        assert (await http.post(f"/banking/ledger/accounts/{b}/unblock", headers=ADMIN)).is_success
        await deposit(http, ana, a, 20)  # another writer: 60 in all
        assert await batch(55) == "created"
        account = (await http.get(f"/banking/accounts/{a}", headers=ana.auth)).json()
        assert account["balance"]["posted"] == 5
