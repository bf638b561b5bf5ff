"""The ledger's rules with no database: what each transfer does to two balances, why one is
refused, replays, two-phase transfers, linked chains, expiry, and the hash chain."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from paycore.banking.domain import InvalidCpf, cpf_check_digits, cpf_digits, masked_cpf
from paycore.banking.ledger.domain import (
    GENESIS,
    Account,
    Balance,
    Book,
    Kind,
    Limit,
    Reason,
    Status,
    Transfer,
    apply,
    chain_hash,
    expire,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CUSTOMER = Limit.DEBITS_MUST_NOT_EXCEED_CREDITS


def book(*accounts: Account) -> Book:
    return Book(accounts={a.id: a for a in accounts})


def funded(account_id: str, credits: int, limit: Limit = CUSTOMER) -> Account:
    return Account(account_id, "BRL", limit, Status.OPEN, Balance(credits_posted=credits))


CASH = Account("cash", "BRL", Limit.NONE, Status.OPEN)


def move(tid: str, debit: str, credit: str, amount: int, **more: object) -> Transfer:
    return Transfer(id=tid, debit_account_id=debit, credit_account_id=credit, amount=amount, **more)  # type: ignore[arg-type]


def test_a_transfer_debits_one_account_and_credits_the_other_by_the_same_amount() -> None:
    done = apply(book(funded("a", 1000), funded("b", 0)), [move("t1", "a", "b", 250)], NOW)
    [outcome] = done.outcomes
    assert outcome.applied
    assert outcome.entry is not None
    assert done.balances["a"] == Balance(debits_posted=250, credits_posted=1000)
    assert done.balances["b"] == Balance(credits_posted=250)
    assert done.balances["a"].available(CUSTOMER) == 750
    assert outcome.entry.seq == 1
    assert outcome.entry.prev_hash == GENESIS
    assert outcome.entry.hash == chain_hash(outcome.entry.content())


@pytest.mark.parametrize(
    ("transfer", "reason"),
    [
        (move("t", "a", "a", 1), Reason.ACCOUNTS_MUST_BE_DIFFERENT),
        (move("t", "a", "b", 0), Reason.AMOUNT_MUST_BE_POSITIVE),
        (move("t", "a", "b", -5), Reason.AMOUNT_MUST_BE_POSITIVE),
        (move("t", "a", "b", 10**15 + 1), Reason.AMOUNT_TOO_LARGE),
        (move("t", "zz", "b", 1), Reason.DEBIT_ACCOUNT_NOT_FOUND),
        (move("t", "a", "zz", 1), Reason.CREDIT_ACCOUNT_NOT_FOUND),
        (move("t", "a", "b", 1001), Reason.INSUFFICIENT_FUNDS),
        (move("t", "a", "b", 1, currency="USD"), Reason.CURRENCY_MISMATCH),
        (move("t", "a", "usd", 1), Reason.CURRENCY_MISMATCH),
        (move("t", "a", "closed", 1), Reason.ACCOUNT_CLOSED),
        (move("t", "blocked", "b", 1), Reason.ACCOUNT_BLOCKED),
        (move("t", "a", "b", 1, timeout_seconds=5), Reason.TIMEOUT_NOT_ALLOWED),
        (move("t", "a", "b", 1, pending_id="p"), Reason.PENDING_ID_NOT_ALLOWED),
        (Transfer("t", Kind.POST), Reason.PENDING_TRANSFER_NOT_FOUND),
        (Transfer("t", Kind.POST, pending_id="nope"), Reason.PENDING_TRANSFER_NOT_FOUND),
        (Transfer("t", Kind.EXPIRE, pending_id="x"), Reason.KIND_NOT_ALLOWED),
        (move("t", "b", "liability", 1), Reason.EXCEEDS_DEBITS),
    ],
)
def test_a_refused_transfer_changes_nothing_and_says_why(
    transfer: Transfer, reason: Reason
) -> None:
    accounts = book(
        funded("a", 1000),
        funded("b", 0, Limit.NONE),
        funded("blocked", 1000).__class__("blocked", "BRL", CUSTOMER, Status.BLOCKED),
        Account("closed", "BRL", CUSTOMER, Status.CLOSED),
        Account("usd", "USD", CUSTOMER, Status.OPEN),
        Account("liability", "BRL", Limit.CREDITS_MUST_NOT_EXCEED_DEBITS, Status.OPEN),
    )
    done = apply(accounts, [transfer], NOW)
    assert [(o.reason, o.entry) for o in done.outcomes] == [(reason, None)]
    assert done.outcomes[0].detail
    assert done.entries == []
    assert done.balances == {}


def test_the_same_id_again_is_the_same_transfer_and_other_fields_are_refused() -> None:
    first = apply(book(funded("a", 1000), CASH), [move("t1", "a", "cash", 100)], NOW)
    [entry] = first.entries
    later = Book(
        accounts={"a": funded("a", 900), "cash": CASH},
        existing={"t1": entry},
        seq=1,
        head=entry.hash,
    )
    again = apply(later, [move("t1", "a", "cash", 100), move("t1", "a", "cash", 101)], NOW)
    assert again.outcomes[0].replay
    assert again.outcomes[0].entry == entry
    assert again.outcomes[1].reason is Reason.ID_REUSED
    assert again.entries == []


def test_within_one_batch_the_second_of_two_equal_ids_is_a_replay() -> None:
    done = apply(book(funded("a", 1000), CASH), [move("t", "a", "cash", 5)] * 2, NOW)
    assert [o.replay for o in done.outcomes] == [False, True]
    assert len(done.entries) == 1
    assert done.balances["a"].debits_posted == 5


def test_a_hold_reserves_funds_and_a_post_of_less_releases_the_rest() -> None:
    hold = move("h", "a", "cash", 600, kind=Kind.PENDING)
    done = apply(book(funded("a", 1000), CASH), [hold], NOW)
    assert done.balances["a"] == Balance(debits_pending=600, credits_posted=1000)
    assert done.balances["a"].available(CUSTOMER) == 400
    [held] = done.entries
    more = Book(
        accounts={
            "a": replace(funded("a", 1000), balance=done.balances["a"]),
            "cash": replace(CASH, balance=done.balances["cash"]),
        },
        pending={"h": held},
        seq=1,
        head=held.hash,
        at=NOW,
    )
    over = apply(more, [move("x", "a", "cash", 500)], NOW)
    assert over.outcomes[0].reason is Reason.INSUFFICIENT_FUNDS
    posted = apply(more, [Transfer("p", Kind.POST, amount=450, pending_id="h")], NOW)
    assert posted.balances["a"] == Balance(debits_posted=450, credits_posted=1000)
    assert posted.balances["cash"] == Balance(credits_posted=450)
    assert posted.entries[0].pending_id == "h"
    assert posted.entries[0].amount == 450
    too_much = apply(more, [Transfer("p", Kind.POST, amount=601, pending_id="h")], NOW)
    assert too_much.outcomes[0].reason is Reason.EXCEEDS_PENDING_AMOUNT
    partial_void = apply(more, [Transfer("v", Kind.VOID, amount=5, pending_id="h")], NOW)
    assert partial_void.outcomes[0].reason is Reason.EXCEEDS_PENDING_AMOUNT
    other_account = apply(
        more, [Transfer("v", Kind.VOID, pending_id="h", debit_account_id="b")], NOW
    )
    assert other_account.outcomes[0].reason is Reason.PENDING_ACCOUNTS_DIFFER


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        (Kind.POST, Reason.PENDING_TRANSFER_ALREADY_POSTED),
        (Kind.VOID, Reason.PENDING_TRANSFER_ALREADY_VOIDED),
        (Kind.EXPIRE, Reason.PENDING_TRANSFER_EXPIRED),
    ],
)
def test_a_hold_is_resolved_once(how: Kind, reason: Reason) -> None:
    done = apply(
        book(funded("a", 1000), CASH), [move("h", "a", "cash", 10, kind=Kind.PENDING)], NOW
    )
    later = Book(
        accounts={"a": funded("a", 1000), "cash": CASH},
        pending={"h": done.entries[0]},
        resolved={"h": how},
    )
    for kind in (Kind.POST, Kind.VOID):
        again = apply(later, [Transfer("r", kind, pending_id="h")], NOW)
        assert again.outcomes[0].reason is reason


def test_a_hold_past_its_timeout_can_no_longer_be_posted_and_expires_once() -> None:
    hold = move("h", "a", "cash", 300, kind=Kind.PENDING, timeout_seconds=60)
    done = apply(book(funded("a", 1000), CASH), [hold], NOW)
    [held] = done.entries
    assert held.expires_at == NOW + timedelta(seconds=60)
    after = replace(funded("a", 1000), balance=done.balances["a"])
    cash = replace(CASH, balance=done.balances["cash"])
    later = Book(accounts={"a": after, "cash": cash}, pending={"h": held}, seq=1, head=held.hash)
    in_time = apply(later, [Transfer("p", Kind.POST, pending_id="h")], NOW + timedelta(seconds=59))
    assert in_time.outcomes[0].applied
    late = apply(later, [Transfer("p", Kind.POST, pending_id="h")], NOW + timedelta(seconds=60))
    assert late.outcomes[0].reason is Reason.PENDING_TRANSFER_EXPIRED
    assert expire(later, ["h"], NOW + timedelta(seconds=59)).entries == []  # not yet due
    expired = expire(later, ["h"], NOW + timedelta(seconds=60))
    [release] = expired.entries
    assert (release.kind, release.id, release.amount) == (Kind.EXPIRE, "expiry-h", 300)
    assert expired.balances["a"] == Balance(credits_posted=1000)
    resolved = replace(later, resolved={"h": Kind.EXPIRE})
    assert expire(resolved, ["h"], NOW + timedelta(hours=1)).entries == []


def test_a_linked_chain_commits_all_or_nothing() -> None:
    accounts = book(funded("a", 100), funded("b", 0), CASH)
    chain = [
        move("1", "a", "b", 60, linked=True),
        move("2", "b", "cash", 60, linked=True),
        move("3", "a", "cash", 60),  # only 40 left: refused, so the chain is
        move("4", "a", "cash", 10),  # not linked to the chain
    ]
    done = apply(accounts, chain, NOW)
    assert [o.reason for o in done.outcomes] == [
        Reason.LINKED_EVENT_FAILED,
        Reason.LINKED_EVENT_FAILED,
        Reason.INSUFFICIENT_FUNDS,
        None,
    ]
    assert [e.id for e in done.entries] == ["4"]
    assert [e.seq for e in done.entries] == [1]  # the undone chain left no gap
    assert done.balances["a"] == Balance(debits_posted=10, credits_posted=100)
    assert "b" not in done.balances or done.balances["b"] == Balance()


def test_a_chain_failing_early_fails_the_transfers_after_it() -> None:
    done = apply(
        book(funded("a", 100), CASH),
        [move("1", "a", "cash", 500, linked=True), move("2", "a", "cash", 1)],
        NOW,
    )
    assert [o.reason for o in done.outcomes] == [
        Reason.INSUFFICIENT_FUNDS,
        Reason.LINKED_EVENT_FAILED,
    ]
    assert done.entries == []


def test_a_chain_left_open_at_the_end_of_the_batch_is_refused_whole() -> None:
    done = apply(
        book(funded("a", 100), CASH),
        [move("0", "a", "cash", 1), move("1", "a", "cash", 1, linked=True)],
        NOW,
    )
    assert [o.reason for o in done.outcomes] == [None, Reason.LINKED_EVENT_CHAIN_OPEN]
    assert len(done.entries) == 1


def test_time_never_runs_backwards_along_the_journal() -> None:
    last = NOW + timedelta(seconds=5)
    done = apply(
        Book(accounts={"a": funded("a", 10), "cash": CASH}, seq=7, head="f" * 64, at=last),
        [move("t", "a", "cash", 1)],
        NOW,
    )
    [entry] = done.entries
    assert (entry.seq, entry.prev_hash, entry.at) == (8, "f" * 64, last)


def test_the_hash_covers_every_field() -> None:
    [entry] = apply(book(funded("a", 10), CASH), [move("t", "a", "cash", 1)], NOW).entries
    for changed in (
        replace(entry, amount=2),
        replace(entry, credit_account_id="b"),
        replace(entry, at=NOW + timedelta(microseconds=1)),
        replace(entry, debit_after=Balance(debits_posted=2, credits_posted=10)),
        replace(entry, prev_hash="1" * 64),
        replace(entry, code="fee"),
    ):
        assert chain_hash(changed.content()) != entry.hash


def test_available_balance_follows_the_accounts_limit() -> None:
    balance = Balance(debits_pending=5, debits_posted=30, credits_pending=7, credits_posted=100)
    assert (balance.posted(CUSTOMER), balance.available(CUSTOMER)) == (70, 65)
    mirror = Limit.CREDITS_MUST_NOT_EXCEED_DEBITS
    assert (balance.posted(mirror), balance.available(mirror)) == (-70, -77)
    assert not balance.empty
    assert Balance(debits_posted=3, credits_posted=3).empty


@pytest.mark.parametrize(
    "cpf", ["529.982.247-25", "52998224725", "123.456.789-09", "529982247-25", "529.982.24725"]
)
def test_a_cpf_with_its_check_digits_is_taken(cpf: str) -> None:
    digits = cpf_digits(cpf)
    assert len(digits) == 11
    assert cpf_check_digits(digits[:9]) == digits[9:]
    assert masked_cpf(digits) == f"***.{digits[3:6]}.{digits[6:9]}-**"


@pytest.mark.parametrize(
    "cpf",
    [
        "529.982.247-26",
        "52998224724",
        "111.111.111-11",
        "1234567890",
        "5299822472a",
        "٥٢٩٩٨٢٢٤٧٢٥",
        "529-982-247.25",
        "529.982.247-25 ",
        "5299.82.247-25",
    ],
)
def test_a_cpf_with_wrong_check_digits_or_shape_is_refused(cpf: str) -> None:
    with pytest.raises(InvalidCpf):
        cpf_digits(cpf)
