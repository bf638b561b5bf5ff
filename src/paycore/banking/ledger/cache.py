"""The accounts a ledger writer knows from its own last batch, so that its next batch does not
read them again.

Between two batches of one writer, only three things change an account as the ledger sees it:
an entry (every balance moves with one, and every entry moves the journal's head), a status
change (block, unblock, close: each counted in ``banking_ledger_state``), and nothing else
(an account's currency and balance limit never change; a new account is simply not known
yet). So what a writer's batch left, stamped with the head its last entry made and the count
of status changes it read, is still true if, under the ledger's lock, the next batch finds
that same head and count: then no other writer has written and no status has changed. Any
difference, and the cache is dropped and everything read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace

from paycore.banking.ledger.domain import Account, Applied, Book, Mark, Transfer


class Accounts:
    """One ledger writer's accounts as of a state of the ledger (``Book.mark``). At most
    ``most`` are kept: past that it starts again from what the last batch named.

    A batch tells it what it leaves as soon as it is applied (``ahead``), before it is
    written: from then on the accounts are true of no known state (a batch that rolls back
    leaves nothing known) until its commit confirms them (``settled``). Meanwhile the book
    the next batch should find (``expected``) can already be made, so that batch can be
    applied ahead of its turn (``service.ahead_of_turn``)."""

    def __init__(self, most: int = 200_000) -> None:
        self._most = most
        self._mark: Mark | None = None
        self._accounts: dict[str, Account] = {}
        self._next: Book | None = None  # the head the last batch applied leaves
        self._applied = asyncio.Event()  # set: no batch is between ``begin`` and ``ahead``
        self._applied.set()

    def at(self, mark: Mark | None) -> Mapping[str, Account]:
        """The accounts known as of ``mark``; none if they were known as of another state."""
        if mark is None or mark != self._mark:
            self._mark, self._accounts, self._next = None, {}, None
        return self._accounts

    def begin(self) -> None:
        """A batch is on its way to being applied: what it leaves is not known until
        ``ahead``, and ``wait_applied`` waits for that."""
        self._applied.clear()

    async def wait_applied(self) -> None:
        """Until the batch begun last has been applied (or none is begun)."""
        await self._applied.wait()

    def ahead(self, book: Book, applied: Applied) -> Mark | None:
        """Take the accounts ``book`` held as ``applied`` leaves them, true once that batch
        commits: returns the mark of that state, for ``settled`` to confirm then."""
        self._mark, self._next = None, None
        self._applied.set()
        if book.mark is None:
            return None
        last = applied.entries[-1] if applied.entries else None
        if len(self._accounts) + len(book.accounts) > self._most:
            self._accounts = {}
        known = self._accounts
        known.update(book.accounts)
        for account_id, balance in applied.balances.items():
            account = known[account_id]
            known[account_id] = Account(
                account.id, account.currency, account.limit, account.status, balance
            )
        self._next = Book(
            accounts={},
            seq=last.seq if last else book.seq,
            head=last.hash if last else book.head,
            at=last.at if last else book.at,
            status_changes=book.status_changes,
        )
        return self._next.mark

    def settled(self, mark: Mark | None) -> None:
        """The batch that left ``mark`` has committed: the accounts are true of it (unless
        another batch has been applied since)."""
        if mark is not None and self._next is not None and mark == self._next.mark:
            self._mark = mark

    def learn(self, accounts: Mapping[str, Account]) -> None:
        """Keep accounts read as committed while the last batch applied is not, and that it
        does not touch: their state is the same in the state it leaves, and if anything else
        changes them, it moves the mark, which empties the cache before any use."""
        if len(self._accounts) + len(accounts) <= self._most:
            self._accounts.update(accounts)

    def unknown(self, transfers: Sequence[Transfer]) -> list[str] | None:
        """The accounts ``transfers`` name that are not kept; None if no book can be expected
        for them at all (``_expectable``)."""
        if not self._expectable(transfers):
            return None
        named = {t.debit_account_id for t in transfers} | {t.credit_account_id for t in transfers}
        return [n for n in named if n is not None and n not in self._accounts]

    def expected(
        self, transfers: Sequence[Transfer], read: Mapping[str, Account] | None = None
    ) -> Book | None:
        """The book ``transfers`` would be applied to if no one else wrote and none of them
        came before: the head the last batch applied leaves, and the accounts they name as it
        leaves them, those not kept as ``read`` (committed, and not touched by that batch).
        None if that is not known (``_expectable``, or an account neither kept nor read)."""
        if self._next is None or not self._expectable(transfers):
            return None
        known, read = self._accounts, read or {}
        accounts = {}
        for transfer in transfers:
            for n in (transfer.debit_account_id, transfer.credit_account_id):
                found = None if n is None else known.get(n) or read.get(n)
                if found is None:
                    return None
                accounts[found.id] = found
        return replace(self._next, accounts=accounts)

    def _expectable(self, transfers: Sequence[Transfer]) -> bool:
        """Whether a book can be expected for ``transfers``: a batch has been applied, and
        none of them posts or voids a hold (its hold would have to be read)."""
        return self._next is not None and all(t.pending_id is None for t in transfers)
