"""``paycore banking verify``: walk the journal from its first entry and check that nothing was
changed, removed or inserted, and that the balances are what the entries make them.

Per entry, in order: its number follows the one before (no gap), it names the hash before it,
its own hash is its content's, and the balances it says it left are the ones before it plus
what it moved (a post, void or expiry: of the hold it names) without breaking either
account's limit. At the end: every account's stored balance is the one the entries made, and
all debits equal all credits. The first problem found is reported."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.banking.ledger import store
from paycore.banking.ledger.domain import (
    GENESIS,
    Balance,
    Entry,
    Kind,
    Limit,
    chain_hash,
    movement,
)

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None  # the entry's, or None for a stored balance
    what: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "balances"
        return f"{where}: {self.what}"


@dataclass(frozen=True, slots=True)
class Report:
    entries: int
    accounts: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Walk:
    def __init__(self, limits: Mapping[str, Limit]) -> None:
        self.limits = limits
        self.balances: dict[str, Balance] = {}
        self.holds: dict[str, int] = {}  # open pending transfer id -> amount held
        self.seq = 0
        self.head = GENESIS

    def check(self, entry: Entry) -> str | None:
        if entry.seq != self.seq + 1:
            return f"follows entry {self.seq}: entries are missing or out of order"
        if entry.prev_hash != self.head:
            return "does not name the hash of the entry before it: the chain is broken"
        if chain_hash(entry.content()) != entry.hash:
            return f"its hash does not match its content: transfer {entry.id} was changed"
        held = 0
        if entry.kind not in (Kind.SINGLE, Kind.PENDING):
            if entry.pending_id not in self.holds:
                return f"resolves {entry.pending_id}, which is no open hold"
            held = self.holds.pop(entry.pending_id)
        moved = movement(entry.kind, entry.amount, held)
        debit = self.balances.get(entry.debit_account_id, Balance()).debited(moved)
        credit = self.balances.get(entry.credit_account_id, Balance()).credited(moved)
        if (debit, credit) != (entry.debit_after, entry.credit_after):
            return f"the balances it records are not the ones its transfer {entry.id} makes"
        for account_id, after in (
            (entry.debit_account_id, debit),
            (entry.credit_account_id, credit),
        ):
            limit = self.limits.get(account_id)
            if limit is None:
                return f"names account {account_id}, which does not exist"
            if entry.kind in (Kind.SINGLE, Kind.PENDING) and after.breaks(limit):
                return f"leaves account {account_id} beyond its limit ({limit})"
        if entry.kind is Kind.PENDING:
            self.holds[entry.id] = entry.amount
        self.balances[entry.debit_account_id] = debit
        self.balances[entry.credit_account_id] = credit
        self.seq, self.head = entry.seq, entry.hash
        return None


async def verify(conn: AsyncConnection, *, progress: Callable[[int], None] | None = None) -> Report:
    """Check the journal and the balances (see the module doc); ``progress`` is told how many
    entries each chunk held."""
    limits = await store.account_limits(conn)
    walk = _Walk(limits)
    checked = 0
    while chunk := await store.journal(conn, walk.seq, CHUNK):
        for entry in chunk:
            if (what := walk.check(entry)) is not None:
                return Report(checked, len(limits), Problem(entry.seq, what))
            checked += 1
        if progress is not None:
            progress(len(chunk))
    stored = await store.all_balances(conn)
    for account_id, balance in stored.items():
        if balance != walk.balances.get(account_id, Balance()):
            problem = Problem(None, f"account {account_id}'s stored balance is not its entries'")
            return Report(checked, len(limits), problem)
    debits = sum(b.debits_posted for b in stored.values())
    credits = sum(b.credits_posted for b in stored.values())
    if debits != credits:
        problem = Problem(None, f"posted debits ({debits}) differ from posted credits ({credits})")
        return Report(checked, len(limits), problem)
    return Report(checked, len(limits), None)
