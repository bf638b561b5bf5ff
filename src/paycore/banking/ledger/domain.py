"""The ledger's rules, with no database: accounts and their balances, transfers (single-phase,
two-phase, linked), what each transfer does to the balances, and why one is refused.

A batch of transfers is applied in order to a ``Book``, the accounts and earlier transfers it
names, by ``apply``: each transfer either becomes a journal ``Entry`` (and changes two
balances) or is refused with a stable reason. The same id twice is one transfer: the same
fields again answer ``exists`` with the original entry, other fields are refused. A chain of
``linked`` transfers commits all or nothing. The store loads the ``Book`` and writes the
entries; this module decides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from paycore.platform.errors import DomainError

CURRENCIES = ("BRL",)
"""The currencies accounts may hold (ISO 4217)."""
MAX_AMOUNT = 10**15
"""The largest amount one transfer moves, in minor units."""


class Limit(StrEnum):
    """What an account's balance may never do (TigerBeetle's balance flags)."""

    NONE = "none"
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class Status(StrEnum):
    OPEN = "open"
    BLOCKED = "blocked"
    CLOSED = "closed"


class Kind(StrEnum):
    """What a journal entry is."""

    SINGLE = "single"  # posted at once
    PENDING = "pending"  # a hold: reserves the amount until posted, voided or expired
    POST = "post"  # posts a pending transfer (its amount or less)
    VOID = "void"  # releases a pending transfer
    EXPIRE = "expire"  # the ledger released a pending transfer whose timeout ran out


RESOLUTIONS = (Kind.POST, Kind.VOID, Kind.EXPIRE)


def movement(kind: Kind, amount: int, held: int = 0) -> tuple[int, int]:
    """What an entry adds to its debit account's debits and its credit account's credits, as
    ``(pending, posted)``: a hold adds to pending, a posting to posted; a post, void or
    expiry takes its hold (``held``) off pending, and a post adds what it posts."""
    if kind is Kind.SINGLE:
        return (0, amount)
    if kind is Kind.PENDING:
        return (amount, 0)
    return (-held, amount if kind is Kind.POST else 0)


class Reason(StrEnum):
    """Why a transfer is refused: stable codes clients act on."""

    LINKED_EVENT_FAILED = "linked-event-failed"
    LINKED_EVENT_CHAIN_OPEN = "linked-event-chain-open"
    ID_REUSED = "transfer-id-reused"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts-must-be-different"
    DEBIT_ACCOUNT_NOT_FOUND = "debit-account-not-found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit-account-not-found"
    CURRENCY_MISMATCH = "currency-mismatch"
    ACCOUNT_CLOSED = "account-closed"
    ACCOUNT_BLOCKED = "account-blocked"
    INSUFFICIENT_FUNDS = "insufficient-funds"
    EXCEEDS_DEBITS = "exceeds-debits"
    PENDING_TRANSFER_NOT_FOUND = "pending-transfer-not-found"
    PENDING_TRANSFER_NOT_PENDING = "pending-transfer-not-pending"
    PENDING_TRANSFER_ALREADY_POSTED = "pending-transfer-already-posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending-transfer-already-voided"
    PENDING_TRANSFER_EXPIRED = "pending-transfer-expired"
    EXCEEDS_PENDING_AMOUNT = "exceeds-pending-transfer-amount"
    PENDING_ACCOUNTS_DIFFER = "pending-transfer-has-different-accounts"
    PENDING_ID_NOT_ALLOWED = "pending-id-not-allowed"
    AMOUNT_MUST_BE_POSITIVE = "amount-must-be-positive"
    AMOUNT_TOO_LARGE = "amount-too-large"
    TIMEOUT_NOT_ALLOWED = "timeout-not-allowed"
    KIND_NOT_ALLOWED = "kind-not-allowed"


class TransferRefused(DomainError):
    """A transfer the ledger refuses; ``code`` is its reason (``Reason``)."""

    status = 422

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.code = reason.value


class TransferIdReused(DomainError):
    """A transfer id already names a transfer with other fields."""

    code = Reason.ID_REUSED.value
    status = 409


# --- balances ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's sums, in minor units. Pending amounts are held, not yet posted."""

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    def debited(self, movement: tuple[int, int]) -> Balance:
        """This balance with ``(pending, posted)`` added to its debits."""
        pending, posted = movement
        return Balance(
            self.debits_pending + pending,
            self.debits_posted + posted,
            self.credits_pending,
            self.credits_posted,
        )

    def credited(self, movement: tuple[int, int]) -> Balance:
        """This balance with ``(pending, posted)`` added to its credits."""
        pending, posted = movement
        return Balance(
            self.debits_pending,
            self.debits_posted,
            self.credits_pending + pending,
            self.credits_posted + posted,
        )

    def breaks(self, limit: Limit) -> bool:
        """Whether this balance breaks the account's limit: debits (posted and held) beyond
        the posted credits, or the mirror. Pending credits count for nothing: they may never
        post."""
        if limit is Limit.DEBITS_MUST_NOT_EXCEED_CREDITS:
            return self.debits_pending + self.debits_posted > self.credits_posted
        if limit is Limit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return self.credits_pending + self.credits_posted > self.debits_posted
        return False

    def posted(self, limit: Limit) -> int:
        """The posted balance on the account's normal side: credits minus debits for an
        account whose debits may not exceed its credits (and one with no limit), debits minus
        credits for the mirror."""
        if limit is Limit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return self.debits_posted - self.credits_posted
        return self.credits_posted - self.debits_posted

    def available(self, limit: Limit) -> int:
        """What may still leave the account on its normal side: the posted balance less what
        is held."""
        if limit is Limit.CREDITS_MUST_NOT_EXCEED_DEBITS:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending

    @property
    def empty(self) -> bool:
        return (
            self.debits_pending == self.credits_pending == 0
            and self.debits_posted == self.credits_posted
        )


@dataclass(frozen=True, slots=True)
class Account:
    """What the ledger needs of an account to apply a transfer."""

    id: str
    currency: str
    limit: Limit
    status: Status
    balance: Balance = Balance()


# --- transfers -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transfer:
    """A transfer as a client asks for it. ``kind`` is ``single``, ``pending``, ``post`` or
    ``void``; a post or void names its ``pending_id`` and may leave the accounts, the
    currency and (void: must) the amount out (``None``/0: the pending transfer's). A pending
    transfer with ``timeout_seconds`` expires by itself. ``linked``: this transfer and the
    next one commit together or not at all."""

    id: str
    kind: Kind = Kind.SINGLE
    debit_account_id: str | None = None
    credit_account_id: str | None = None
    amount: int = 0
    currency: str | None = None
    code: str = "transfer"
    pending_id: str | None = None
    timeout_seconds: int = 0
    linked: bool = False


def single(
    transfer_id: str, debit: str, credit: str, amount: int, code: str, currency: str = "BRL"
) -> Transfer:
    """A single-phase transfer of ``amount`` from ``debit`` to ``credit``."""
    return Transfer(
        id=transfer_id,
        kind=Kind.SINGLE,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=amount,
        currency=currency,
        code=code,
    )


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry: one applied transfer, never changed once written. It carries both
    accounts' balances after it, and the hash of its content chained to the entry before."""

    seq: int
    id: str
    kind: Kind
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    at: datetime
    pending_id: str | None
    expires_at: datetime | None
    debit_after: Balance
    credit_after: Balance
    prev_hash: str
    hash: str = ""

    def content(self) -> bytes:
        """The canonical bytes the hash covers: every field but the hash itself, ``|``-joined
        (times in ISO 8601 to the microsecond, an absent one empty)."""
        d, c = self.debit_after, self.credit_after
        expires = self.expires_at.isoformat(timespec="microseconds") if self.expires_at else ""
        return (
            f"{self.seq}|{self.id}|{self.kind.value}|{self.debit_account_id}|"
            f"{self.credit_account_id}|{self.amount}|{self.currency}|{self.code}|"
            f"{self.at.isoformat(timespec='microseconds')}|{self.pending_id or ''}|{expires}|"
            f"{d.debits_pending}|{d.debits_posted}|{d.credits_pending}|{d.credits_posted}|"
            f"{c.debits_pending}|{c.debits_posted}|{c.credits_pending}|{c.credits_posted}|"
            f"{self.prev_hash}"
        ).encode()

    def seal(self) -> Entry:
        """Set the hash of an entry just made, before anyone else sees it (what ``sealed``
        does without building the entry a second time: a batch seals thousands)."""
        object.__setattr__(self, "hash", chain_hash(self.content()))
        return self

    def matches(self, transfer: Transfer) -> bool:
        """Whether ``transfer`` asks for exactly what this entry did (a replay of its id)."""
        if transfer.kind is not self.kind or transfer.code != self.code:
            return False
        if transfer.debit_account_id not in (None, self.debit_account_id):
            return False
        if transfer.credit_account_id not in (None, self.credit_account_id):
            return False
        if transfer.currency not in (None, self.currency):
            return False
        if transfer.pending_id != self.pending_id:
            return False
        if self.kind is Kind.PENDING and transfer.timeout_seconds != self._timeout():
            return False
        return (
            transfer.amount in (0, self.amount)
            if self.kind in RESOLUTIONS
            else (transfer.amount == self.amount)
        )

    def _timeout(self) -> int:
        if self.expires_at is None:
            return 0
        return round((self.expires_at - self.at).total_seconds())


def sums(balance: Balance) -> tuple[int, int, int, int]:
    """The four sums of a balance, in the order the journal stores them."""
    return (
        balance.debits_pending,
        balance.debits_posted,
        balance.credits_pending,
        balance.credits_posted,
    )


GENESIS = "0" * 64
"""The previous hash of the first entry."""


def chain_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def check(transfer: Transfer) -> None:
    """The rules a transfer must meet on its own, before any account is looked at:
    ``TransferRefused`` naming the first one it breaks."""
    if transfer.kind in (Kind.SINGLE, Kind.PENDING):
        if transfer.pending_id is not None:
            raise _refused(Reason.PENDING_ID_NOT_ALLOWED, "only a post or a void names one")
        if transfer.debit_account_id is None:
            raise _refused(Reason.DEBIT_ACCOUNT_NOT_FOUND, "no debit account given")
        if transfer.credit_account_id is None:
            raise _refused(Reason.CREDIT_ACCOUNT_NOT_FOUND, "no credit account given")
        if transfer.debit_account_id == transfer.credit_account_id:
            raise _refused(Reason.ACCOUNTS_MUST_BE_DIFFERENT, "debit and credit are one account")
        if transfer.amount <= 0:
            raise _refused(Reason.AMOUNT_MUST_BE_POSITIVE, "the amount must be above zero")
    elif transfer.kind in (Kind.POST, Kind.VOID):
        if transfer.pending_id is None:
            raise _refused(Reason.PENDING_TRANSFER_NOT_FOUND, f"a {transfer.kind} names one")
        if transfer.amount < 0:
            raise _refused(Reason.AMOUNT_MUST_BE_POSITIVE, "the amount may not be negative")
    else:
        raise _refused(Reason.KIND_NOT_ALLOWED, f"a client may not ask for a {transfer.kind}")
    if transfer.amount > MAX_AMOUNT:
        raise _refused(Reason.AMOUNT_TOO_LARGE, f"the amount may be {MAX_AMOUNT} at most")
    if transfer.timeout_seconds < 0:
        raise _refused(Reason.TIMEOUT_NOT_ALLOWED, "the timeout may not be negative")
    if transfer.timeout_seconds and transfer.kind is not Kind.PENDING:
        raise _refused(Reason.TIMEOUT_NOT_ALLOWED, "only a pending transfer has a timeout")


def units(minor: int) -> str:
    """Minor units as the decimal a person reads: ``7450`` is ``74.50``."""
    sign, whole = ("-" if minor < 0 else ""), abs(minor)
    return f"{sign}{whole // 100}.{whole % 100:02d}"


def _refused(reason: Reason, detail: str) -> TransferRefused:
    return TransferRefused(reason, detail)


# --- applying a batch ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one transfer: its entry (new, or the original one of a replay), or why
    it was refused."""

    transfer_id: str
    entry: Entry | None = None
    reason: Reason | None = None
    detail: str = ""
    replay: bool = False

    @property
    def applied(self) -> bool:
        return self.entry is not None and not self.replay


Mark = tuple[int, str, int]
"""A state of the ledger: the journal's last seq and hash, and the count of status changes."""


@dataclass
class Book:
    """What a batch needs to know, loaded by the store: the accounts the batch names, the
    entries already under its ids, the pending transfers it posts or voids and how each was
    resolved, and the head of the journal."""

    accounts: dict[str, Account]
    existing: dict[str, Entry] = field(default_factory=dict)
    pending: dict[str, Entry] = field(default_factory=dict)
    resolved: dict[str, Kind] = field(default_factory=dict)  # pending id -> how
    seq: int = 0  # the last entry's
    head: str = GENESIS  # the last entry's hash
    at: datetime | None = None  # the last entry's time
    status_changes: int | None = None  # how many times an account's status changed

    @property
    def mark(self) -> Mark | None:
        """The state of the ledger this book was read in: the journal's head and the count of
        status changes (None if that count is unknown)."""
        if self.status_changes is None:
            return None
        return (self.seq, self.head, self.status_changes)


@dataclass(frozen=True, slots=True)
class Applied:
    outcomes: list[Outcome]
    entries: list[Entry]  # new, in journal order
    balances: dict[str, Balance]  # the accounts changed: their balance after the batch


def apply(book: Book, transfers: Sequence[Transfer], now: datetime) -> Applied:
    """Apply ``transfers`` in order (see the module doc). A linked chain is the transfers up
    to and including the first one not ``linked``; one refused, the chain's entries are
    undone and every other transfer of it is refused as ``linked-event-failed``. A chain
    still open at the end of the batch is refused whole. Entries are stamped ``now``, or the
    last entry's time if the clock is behind it: time never runs backwards along the
    journal."""
    state = _State(book, now)
    outcomes: list[Outcome | None] = [None] * len(transfers)
    start = 0
    while start < len(transfers):
        end = start
        while end < len(transfers) - 1 and transfers[end].linked:
            end += 1
        chain = range(start, end + 1)
        if transfers[end].linked:
            for k in chain:
                outcomes[k] = Outcome(
                    transfers[k].id,
                    reason=Reason.LINKED_EVENT_CHAIN_OPEN,
                    detail="the last transfer of the batch is linked to nothing",
                )
        elif len(chain) == 1:
            outcomes[start] = state.one(transfers[start])
        else:
            mark = state.mark()
            for k in chain:
                outcome = state.one(transfers[k])
                outcomes[k] = outcome
                if outcome.entry is None:
                    state.rewind(mark)
                    _fail_chain(outcomes, transfers, chain, failed=k)
                    break
            state.settle()
        start = end + 1
    done = [o for o in outcomes if o is not None]
    return Applied(done, state.entries, state.changed())


def expire(book: Book, pending_ids: Iterable[str], now: datetime) -> Applied:
    """Release the holds of pending transfers whose timeout has run out by ``now``: an
    ``expire`` entry each (its id: ``expiry-`` and the pending transfer's id). One already
    resolved, or not yet due, is left as it is (no outcome)."""
    state = _State(book, now)
    outcomes: list[Outcome] = []
    for pending_id in pending_ids:
        pending = book.pending.get(pending_id)
        if pending is None or pending_id in book.resolved:
            continue
        if pending.expires_at is None or pending.expires_at > state.at:
            continue
        outcomes.append(state.resolve(EXPIRY_PREFIX + pending_id, Kind.EXPIRE, pending, "expiry"))
    return Applied(outcomes, state.entries, state.changed())


EXPIRY_PREFIX = "expiry-"


def _fail_chain(
    outcomes: list[Outcome | None], transfers: Sequence[Transfer], chain: range, *, failed: int
) -> None:
    for k in chain:
        if k != failed:
            outcomes[k] = Outcome(
                transfers[k].id,
                reason=Reason.LINKED_EVENT_FAILED,
                detail=f"transfer {transfers[failed].id} of its linked chain was refused",
            )


class _State:
    """A batch being applied: the book's balances as they change, the entries made, and,
    while a linked chain is applied, an undo log so a failed chain leaves no trace."""

    def __init__(self, book: Book, now: datetime) -> None:
        self._book = book
        self.at = now if book.at is None or now >= book.at else book.at
        self.entries: list[Entry] = []
        self._balances: dict[str, Balance] = {}
        self._new: dict[str, Entry] = {}  # this batch's entries by id
        self._resolved: dict[str, Kind] = {}
        self._seq = book.seq
        self._head = book.head
        self._undo: list[tuple[dict[str, object], str, object]] | None = None

    # -- undo --
    def mark(self) -> tuple[int, int, str]:
        """Where a linked chain starts: changes are logged until ``settle``."""
        self._undo = []
        return (len(self.entries), self._seq, self._head)

    def settle(self) -> None:
        """The chain is over, applied or undone: changes are no longer logged."""
        self._undo = None

    def rewind(self, mark: tuple[int, int, str]) -> None:
        entries, self._seq, self._head = mark
        assert self._undo is not None, "rewind is for a chain begun with mark"
        while self._undo:
            table, key, old = self._undo.pop()
            if old is _ABSENT:
                del table[key]
            else:
                table[key] = old
        del self.entries[entries:]

    def _set(self, table: dict[str, object], key: str, value: object) -> None:
        if self._undo is not None:
            self._undo.append((table, key, table.get(key, _ABSENT)))
        table[key] = value

    def changed(self) -> dict[str, Balance]:
        return dict(self._balances)

    # -- lookups --
    def balance(self, account: Account) -> Balance:
        return self._balances.get(account.id, account.balance)

    def entry(self, transfer_id: str) -> Entry | None:
        return self._new.get(transfer_id) or self._book.existing.get(transfer_id)

    def pending(self, transfer_id: str) -> Entry | None:
        found = self._new.get(transfer_id) or self._book.pending.get(transfer_id)
        return found if found is not None and found.kind is Kind.PENDING else None

    def resolution(self, pending_id: str) -> Kind | None:
        return self._resolved.get(pending_id) or self._book.resolved.get(pending_id)

    # -- one transfer --
    def one(self, transfer: Transfer) -> Outcome:
        earlier = self.entry(transfer.id)
        if earlier is not None:
            if earlier.matches(transfer):
                return Outcome(transfer.id, entry=earlier, replay=True)
            return Outcome(
                transfer.id,
                reason=Reason.ID_REUSED,
                detail=f"transfer {transfer.id} exists with other fields",
            )
        try:
            check(transfer)
            if transfer.kind in (Kind.SINGLE, Kind.PENDING):
                return self._move(transfer)
            return self._settle(transfer)
        except TransferRefused as refused:
            return Outcome(transfer.id, reason=refused.reason, detail=refused.detail)

    def _account(self, account_id: str | None, missing: Reason) -> Account:
        account = self._book.accounts.get(account_id or "")
        if account is None:
            raise _refused(missing, f"account {account_id} is unknown")
        return account

    def _move(self, transfer: Transfer) -> Outcome:
        debit = self._account(transfer.debit_account_id, Reason.DEBIT_ACCOUNT_NOT_FOUND)
        credit = self._account(transfer.credit_account_id, Reason.CREDIT_ACCOUNT_NOT_FOUND)
        currency = transfer.currency or debit.currency
        if not debit.currency == credit.currency == currency:
            raise _refused(
                Reason.CURRENCY_MISMATCH,
                f"{currency} between accounts in {debit.currency} and {credit.currency}",
            )
        for account in (debit, credit):
            if account.status is Status.CLOSED:
                raise _refused(Reason.ACCOUNT_CLOSED, f"account {account.id} is closed")
            if account.status is Status.BLOCKED:
                raise _refused(Reason.ACCOUNT_BLOCKED, f"account {account.id} is blocked")
        amount, held = transfer.amount, transfer.kind is Kind.PENDING
        moved = movement(transfer.kind, amount)
        debit_after = self.balance(debit).debited(moved)
        credit_after = self.balance(credit).credited(moved)
        if debit_after.breaks(debit.limit):
            raise _refused(
                Reason.INSUFFICIENT_FUNDS,
                f"account {debit.id} has {units(self.balance(debit).available(debit.limit))} "
                f"{debit.currency} available",
            )
        if credit_after.breaks(credit.limit):
            raise _refused(
                Reason.EXCEEDS_DEBITS, f"account {credit.id} may not be credited beyond its debits"
            )
        expires = None
        if held and transfer.timeout_seconds:
            expires = self.at + timedelta(seconds=transfer.timeout_seconds)
        return self._write(
            transfer.id,
            transfer.kind,
            debit,
            credit,
            amount,
            currency,
            transfer.code,
            debit_after,
            credit_after,
            pending_id=None,
            expires_at=expires,
        )

    def _settle(self, transfer: Transfer) -> Outcome:
        assert transfer.pending_id is not None  # check()
        pending = self.pending(transfer.pending_id)
        if pending is None:
            raise _refused(
                Reason.PENDING_TRANSFER_NOT_FOUND, f"no pending transfer {transfer.pending_id}"
            )
        given = (transfer.debit_account_id, transfer.credit_account_id, transfer.currency)
        held = (pending.debit_account_id, pending.credit_account_id, pending.currency)
        if any(g is not None and g != h for g, h in zip(given, held, strict=True)):
            raise _refused(
                Reason.PENDING_ACCOUNTS_DIFFER, "the accounts or currency differ from the hold's"
            )
        amount = transfer.amount or pending.amount
        if amount > pending.amount or (transfer.kind is Kind.VOID and amount != pending.amount):
            raise _refused(
                Reason.EXCEEDS_PENDING_AMOUNT,
                f"{units(amount)} against a hold of {units(pending.amount)}",
            )
        return self.resolve(transfer.id, transfer.kind, pending, transfer.code, amount)

    def resolve(
        self, transfer_id: str, kind: Kind, pending: Entry, code: str, amount: int = 0
    ) -> Outcome:
        """Post (``amount``), void or expire the hold ``pending``."""
        how = self.resolution(pending.id)
        if how is not None:
            reason = {
                Kind.POST: Reason.PENDING_TRANSFER_ALREADY_POSTED,
                Kind.VOID: Reason.PENDING_TRANSFER_ALREADY_VOIDED,
                Kind.EXPIRE: Reason.PENDING_TRANSFER_EXPIRED,
            }[how]
            raise _refused(reason, f"transfer {pending.id} was {how}ed already")
        expires = pending.expires_at
        if kind is not Kind.EXPIRE and expires is not None and self.at >= expires:
            raise _refused(Reason.PENDING_TRANSFER_EXPIRED, f"transfer {pending.id} expired")
        amount = amount if kind is Kind.POST else pending.amount
        moved = movement(kind, amount, pending.amount)
        debit = self._account(pending.debit_account_id, Reason.DEBIT_ACCOUNT_NOT_FOUND)
        credit = self._account(pending.credit_account_id, Reason.CREDIT_ACCOUNT_NOT_FOUND)
        debit_after = self.balance(debit).debited(moved)
        credit_after = self.balance(credit).credited(moved)
        self._set(self._resolved, pending.id, kind)  # type: ignore[arg-type]
        return self._write(
            transfer_id,
            kind,
            debit,
            credit,
            amount,
            pending.currency,
            code,
            debit_after,
            credit_after,
            pending_id=pending.id,
            expires_at=None,
        )

    def _write(
        self,
        transfer_id: str,
        kind: Kind,
        debit: Account,
        credit: Account,
        amount: int,
        currency: str,
        code: str,
        debit_after: Balance,
        credit_after: Balance,
        *,
        pending_id: str | None,
        expires_at: datetime | None,
    ) -> Outcome:
        entry = Entry(
            seq=self._seq + 1,
            id=transfer_id,
            kind=kind,
            debit_account_id=debit.id,
            credit_account_id=credit.id,
            amount=amount,
            currency=currency,
            code=code,
            at=self.at,
            pending_id=pending_id,
            expires_at=expires_at,
            debit_after=debit_after,
            credit_after=credit_after,
            prev_hash=self._head,
        ).seal()
        self._seq, self._head = entry.seq, entry.hash
        self.entries.append(entry)
        self._set(self._new, transfer_id, entry)  # type: ignore[arg-type]
        self._set(self._balances, debit.id, debit_after)  # type: ignore[arg-type]
        self._set(self._balances, credit.id, credit_after)  # type: ignore[arg-type]
        return Outcome(transfer_id, entry=entry)


_ABSENT = object()
