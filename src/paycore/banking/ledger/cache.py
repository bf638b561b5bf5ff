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

from collections.abc import Mapping

from paycore.banking.ledger.domain import Account, Applied, Book, Mark


class Accounts:
    """One ledger writer's accounts as of a state of the ledger (``Book.mark``). At most
    ``most`` are kept: past that it starts again from what the last batch named."""

    def __init__(self, most: int = 200_000) -> None:
        self._most = most
        self._mark: Mark | None = None
        self._accounts: dict[str, Account] = {}

    def at(self, mark: Mark | None) -> Mapping[str, Account]:
        """The accounts known as of ``mark``; none if they were known as of another state."""
        if mark is None or mark != self._mark:
            self._mark, self._accounts = None, {}
        return self._accounts

    def unsettled(self) -> None:
        """A batch read from this cache is being written: until ``after`` says it committed,
        what is here is true of no known state."""
        self._mark = None

    def after(self, book: Book, applied: Applied) -> None:
        """Keep the accounts ``book`` held as ``applied`` left them, as of the state its
        commit made. Call it once that batch has committed, and ``unsettled`` before."""
        if book.mark is None:
            return
        last = applied.entries[-1] if applied.entries else None
        mark = (last.seq, last.hash, book.mark[2]) if last is not None else book.mark
        if len(self._accounts) + len(book.accounts) > self._most:
            self._accounts = {}
        known = self._accounts
        known.update(book.accounts)
        for account_id, balance in applied.balances.items():
            account = known[account_id]
            known[account_id] = Account(
                account.id, account.currency, account.limit, account.status, balance
            )
        self._mark = mark
