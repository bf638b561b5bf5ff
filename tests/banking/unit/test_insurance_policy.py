"""A policy's one-year term and the pro-rata refund of its cancellation, with no database: the
worked example of docs/banking-insurance.md by hand, each boundary (before and at the start, the
middle, the end, after it), and for any policy a refund within the premium that never grows as
the cancellation comes later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore.banking.insurance.policy import policy_end, refund

START = datetime(2027, 1, 10, 0, 0, tzinfo=UTC)
END = policy_end(START)  # 2028-01-10: 365 days
PREMIUM = 528_580


def test_a_policy_runs_one_year() -> None:
    cases = {
        START: datetime(2028, 1, 10, tzinfo=UTC),
        datetime(2027, 7, 1, 9, 30, tzinfo=UTC): datetime(2028, 7, 1, 9, 30, tzinfo=UTC),
        datetime(2028, 2, 29, 12, tzinfo=UTC): datetime(2029, 2, 28, 12, tzinfo=UTC),
        datetime(2027, 3, 1): datetime(2028, 3, 1, tzinfo=UTC),  # naive: UTC
    }
    for start, end in cases.items():
        assert policy_end(start) == end


def test_the_worked_example_of_the_docs() -> None:
    # 100 days and 12 hours after the start: 101 days used, 264 of 365 left
    cancelled = datetime(2027, 4, 20, 12, 0, tzinfo=UTC)
    assert refund(PREMIUM, START, END, cancelled) == 382_315  # 528,580 × 264 / 365 = 382,315.39


def test_cancelled_before_or_at_the_start_the_whole_premium_comes_back() -> None:
    assert refund(PREMIUM, START, END, START - timedelta(days=30)) == PREMIUM
    assert refund(PREMIUM, START, END, START) == PREMIUM


def test_a_day_begun_is_a_day_used() -> None:
    second = START + timedelta(seconds=1)
    assert refund(PREMIUM, START, END, second) == PREMIUM * 364 // 365 == 527_131
    assert refund(PREMIUM, START, END, START + timedelta(days=1)) == 527_131
    assert refund(PREMIUM, START, END, START + timedelta(days=1, microseconds=1)) == 525_683


def test_cancelled_in_the_middle_half_comes_back() -> None:
    start = datetime(2027, 7, 1, tzinfo=UTC)
    end = policy_end(start)  # 366 days: 29 February 2028 is in the term
    assert (end - start).days == 366
    assert refund(100_001, start, end, start + timedelta(days=183)) == 50_000  # 50,000.5 down


def test_cancelled_at_or_after_the_end_nothing_comes_back() -> None:
    assert refund(PREMIUM, START, END, END) == 0
    assert refund(PREMIUM, START, END, END + timedelta(days=400)) == 0
    assert refund(PREMIUM, START, END, END - timedelta(hours=1)) == 0  # its last day is begun
    assert refund(PREMIUM, START, END, END - timedelta(days=1)) == PREMIUM // 365


def test_instants_in_other_zones_count_as_the_same_instants() -> None:
    brasilia = timezone(timedelta(hours=-3))
    cancelled = datetime(2027, 4, 20, 9, 0, tzinfo=brasilia)  # 12:00 UTC
    assert refund(PREMIUM, START, END, cancelled) == 382_315
    assert refund(PREMIUM, START, END, datetime(2027, 4, 20, 12, 0)) == 382_315  # naive: UTC


@pytest.mark.parametrize("premium", [-1, 10.5, True, "528580"])
def test_a_premium_not_whole_centavos_is_refused(premium: object) -> None:
    with pytest.raises(ValueError, match="the premium must be whole centavos of zero or more"):
        refund(premium, START, END, START)  # type: ignore[arg-type]


def test_an_end_not_after_the_start_is_refused() -> None:
    with pytest.raises(ValueError, match="must be after its start"):
        refund(PREMIUM, START, START, START)
    with pytest.raises(ValueError, match="must be after its start"):
        refund(PREMIUM, END, START, START)


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@given(
    premium=st.integers(0, 10**12),
    start=instants,
    first=st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=400)),
    later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
)
def test_a_refund_is_within_the_premium_and_never_grows_later(
    premium: int, start: datetime, first: timedelta, later: timedelta
) -> None:
    end = policy_end(start)
    earlier_refund = refund(premium, start, end, start + first)
    later_refund = refund(premium, start, end, start + first + later)
    assert 0 <= later_refund <= earlier_refund <= premium
