"""The ledger, through its service on a real SQLite database, against a plain in-memory model
written here from the rules alone: hypothesis drives both with the same random transfers
(single, pending, post, void, replays, reused ids, linked pairs) and after every step checks
that they agree on what was applied and on every balance, and that the invariants hold: all
debits equal all credits, no account breaks its limit, and ``verify`` finds every balance
equal to its entries and the hash chain whole."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from paycore.banking.ledger import service, store
from paycore.banking.ledger.domain import Kind, Limit, Transfer
from paycore.banking.ledger.verify import verify
from paycore.platform.persistence import db
from paycore.platform.persistence.uow import Database

NOW = datetime(2026, 12, 6, tzinfo=UTC)
LIMITS = {
    "checking-1": Limit.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "checking-2": Limit.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "cash": Limit.NONE,
    "loans": Limit.CREDITS_MUST_NOT_EXCEED_DEBITS,
}


@dataclass
class Sums:
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0


@dataclass
class Model:
    """The rules, plainly: a transfer is refused if its amount is not positive, an account is
    unknown or repeated, or it would leave an account beyond its limit; a hold is posted (its
    amount or less) or voided once; an id names one transfer."""

    sums: dict[str, Sums] = field(default_factory=lambda: {a: Sums() for a in LIMITS})
    done: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # id -> what was asked
    holds: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # open holds
    closed_holds: set[str] = field(default_factory=set)

    def allowed(self, account: str, s: Sums) -> bool:
        limit = LIMITS[account]
        if limit is Limit.DEBITS_MUST_NOT_EXCEED_CREDITS:
            return s.debits_pending + s.debits_posted <= s.credits_posted
        if limit is Limit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return s.credits_pending + s.credits_posted <= s.debits_posted
        return True

    def apply(self, t: Transfer) -> bool:
        """Whether ``t`` is applied (or is a replay of one applied)."""
        asked = (t.kind, t.debit_account_id, t.credit_account_id, t.amount, t.pending_id)
        if t.id in self.done:
            return self.done[t.id] == asked
        if t.kind in (Kind.SINGLE, Kind.PENDING):
            d, c = t.debit_account_id, t.credit_account_id
            if t.amount <= 0 or d == c or d not in LIMITS or c not in LIMITS:
                return False
            assert d is not None
            assert c is not None
            debit, credit = Sums(**vars(self.sums[d])), Sums(**vars(self.sums[c]))
            if t.kind is Kind.SINGLE:
                debit.debits_posted += t.amount
                credit.credits_posted += t.amount
            else:
                debit.debits_pending += t.amount
                credit.credits_pending += t.amount
            if not (self.allowed(d, debit) and self.allowed(c, credit)):
                return False
            self.sums[d], self.sums[c] = debit, credit
            if t.kind is Kind.PENDING:
                self.holds[t.id] = (d, c, t.amount)
        else:
            hold = self.holds.get(t.pending_id or "")
            if hold is None:
                return False
            d, c, held = hold
            amount = t.amount or held
            if amount > held or (t.kind is Kind.VOID and amount != held):
                return False
            posted = amount if t.kind is Kind.POST else 0
            self.sums[d].debits_pending -= held
            self.sums[d].debits_posted += posted
            self.sums[c].credits_pending -= held
            self.sums[c].credits_posted += posted
            del self.holds[t.pending_id or ""]
        self.done[t.id] = asked
        return True


accounts = st.sampled_from([*LIMITS, "nowhere"])
amounts = st.integers(min_value=-5, max_value=2_000)


class LedgerAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="ledger-model-"))
        self.db = Database(db.create_engine(f"sqlite+aiosqlite:///{self.folder / 'l.db'}"))
        self.ids: dict[str, str] = {}  # model account name -> ledger id
        self.run(self._open())
        self.model = Model()
        self.serial = 0

    def run(self, call: Any) -> Any:
        return self.loop.run_until_complete(call)

    async def _open(self) -> None:
        async with self.db.engine.begin() as conn:
            await conn.run_sync(db.metadata.create_all)
        async with self.db.transaction() as tx:
            for name, limit in LIMITS.items():
                self.ids[name] = await service.open_account(tx, kind=name, limit=limit, now=NOW)

    def teardown(self) -> None:
        self.run(self.db.engine.dispose())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def new_id(self) -> str:
        self.serial += 1
        return f"t{self.serial}"

    def ledger_transfer(self, t: Transfer) -> Transfer:
        """``t`` with the model's account names replaced by the ledger's ids."""

        def real(name: str | None) -> str | None:
            return None if name is None else self.ids.get(name, "00000000-0000-0000-0000-0000")

        return Transfer(
            id=t.id,
            kind=t.kind,
            debit_account_id=real(t.debit_account_id),
            credit_account_id=real(t.credit_account_id),
            amount=t.amount,
            pending_id=t.pending_id,
            linked=t.linked,
        )

    def both(self, transfers: list[Transfer]) -> None:
        async def go() -> list[bool]:
            async with self.db.transaction() as tx:
                applied = await service.apply(tx, [self.ledger_transfer(t) for t in transfers], NOW)
            return [o.entry is not None for o in applied.outcomes]

        got = self.run(go())
        if len(transfers) == 1:
            expected = [self.model.apply(transfers[0])]
        else:  # a linked pair: both or neither
            saved = Model(
                {k: Sums(**vars(v)) for k, v in self.model.sums.items()},
                dict(self.model.done),
                dict(self.model.holds),
            )
            results = [self.model.apply(t) for t in transfers]
            if not all(results):
                self.model = saved
                results = [False, False]
            expected = results
        assert got == expected, (transfers, got, expected)

    @rule(debit=accounts, credit=accounts, amount=amounts, pending=st.booleans())
    def transfer(self, debit: str, credit: str, amount: int, pending: bool) -> None:
        kind = Kind.PENDING if pending else Kind.SINGLE
        self.both([Transfer(self.new_id(), kind, debit, credit, amount)])

    @rule(debit=accounts, credit=accounts, amount=amounts, other=amounts)
    def linked_pair(self, debit: str, credit: str, amount: int, other: int) -> None:
        first = Transfer(self.new_id(), Kind.SINGLE, debit, credit, amount, linked=True)
        self.both([first, Transfer(self.new_id(), Kind.SINGLE, credit, debit, other)])

    @precondition(lambda self: self.model.done)
    @rule(data=st.data(), same=st.booleans())
    def reuse_an_id(self, data: st.DataObject, same: bool) -> None:
        tid = data.draw(st.sampled_from(sorted(self.model.done)))
        kind, debit, credit, amount, _pending_id = self.model.done[tid]
        if kind not in (Kind.SINGLE, Kind.PENDING):
            return
        self.both([Transfer(tid, kind, debit, credit, amount if same else amount + 1)])

    @precondition(lambda self: self.model.holds or self.model.done)
    @rule(data=st.data(), post=st.booleans(), amount=st.integers(min_value=0, max_value=2_000))
    def resolve(self, data: st.DataObject, post: bool, amount: int) -> None:
        pending_id = data.draw(st.sampled_from(sorted({*self.model.holds, *self.model.done})))
        kind = Kind.POST if post else Kind.VOID
        self.both([Transfer(self.new_id(), kind, amount=amount, pending_id=pending_id)])

    @invariant()
    def balances_agree_and_hold(self) -> None:
        async def read() -> Any:
            async with self.db.connect() as conn:
                return await store.all_balances(conn), await verify(conn)

        balances, report = self.run(read())
        for name, account_id in self.ids.items():
            b, m = balances[account_id], self.model.sums[name]
            assert (b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted) == (
                m.debits_pending,
                m.debits_posted,
                m.credits_pending,
                m.credits_posted,
            ), name
            assert not b.breaks(LIMITS[name])
        assert sum(b.debits_posted for b in balances.values()) == sum(
            b.credits_posted for b in balances.values()
        )
        assert sum(b.debits_pending for b in balances.values()) == sum(
            b.credits_pending for b in balances.values()
        )
        assert report.ok, report.problem


LedgerAgainstModel.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_agrees_with_the_model = LedgerAgainstModel.TestCase
