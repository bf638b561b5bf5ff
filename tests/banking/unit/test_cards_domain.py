"""The cards' rules with no database: card numbers under a BIN with their Luhn digit, CVVs,
expiry dates, why an authorization is declined, what became of one, and the ledger ids an
authorization derives."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore.banking.cards.domain import (
    AuthorizationStatus,
    CardState,
    CardStatus,
    Decline,
    Expiry,
    capture_id,
    decline_of,
    hold_id,
    luhn_digit,
    new_cvv,
    new_number,
    status_of,
    void_id,
)
from paycore.banking.ledger.domain import Kind
from paycore.platform.cards import brand_of, luhn_valid

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@given(st.from_regex(r"\A[0-9]{6,8}\Z"))
def test_a_card_number_is_16_digits_under_its_bin_and_passes_luhn(bin_: str) -> None:
    number = new_number(bin_)
    assert re.fullmatch(r"[0-9]{16}", number)
    assert number.startswith(bin_)
    assert luhn_valid(number)  # the platform's check, written apart from the generator
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not luhn_valid(wrong)


@given(st.from_regex(r"\A[0-9]{1,30}\Z"))
def test_the_luhn_digit_is_the_one_digit_that_passes(body: str) -> None:
    passing = [d for d in "0123456789" if luhn_valid(body + d)]
    assert passing == [luhn_digit(body)]


def test_known_luhn_digits() -> None:
    assert luhn_digit("7992739871") == "3"  # the textbook example, 79927398713
    assert luhn_digit("411111111111111") == "1"
    assert luhn_digit("555555555555444") == "4"


def test_the_default_bin_issues_elo_cards() -> None:
    assert brand_of(new_number("650485")) == "elo"


@pytest.mark.parametrize("bin_", ["", "12345", "123456789012345", "12a456", "１２３４５６"])
def test_a_bin_that_is_not_6_to_8_digits_is_refused(bin_: str) -> None:
    with pytest.raises(ValueError, match="BIN"):
        new_number(bin_)


def test_cvvs_are_three_digits_leading_zeros_kept() -> None:
    drawn = {new_cvv() for _ in range(3000)}
    assert all(re.fullmatch(r"[0-9]{3}", cvv) for cvv in drawn)
    assert any(cvv.startswith("0") for cvv in drawn)  # 1 - 0.9^3000: never fails by chance
    assert len(drawn) > 900  # random: 3000 draws from 1000 leave hardly any unseen


def test_numbers_are_random() -> None:
    assert len({new_number("650485") for _ in range(200)}) == 200


def test_a_card_is_valid_through_the_last_day_of_its_expiry_month() -> None:
    expiry = Expiry.after(NOW, 5)
    assert expiry == Expiry(12, 2031)
    assert not expiry.passed(datetime(2031, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert expiry.passed(datetime(2032, 1, 1, tzinfo=UTC))
    february = Expiry(2, 2028)  # a leap year
    assert not february.passed(datetime(2028, 2, 29, 12, tzinfo=UTC))
    assert february.passed(datetime(2028, 3, 1, tzinfo=UTC))


def test_expiry_is_judged_in_utc() -> None:
    brasilia = timezone(timedelta(hours=-3))
    new_years_eve = datetime(2031, 12, 31, 22, 0, tzinfo=brasilia)  # 01:00 UTC on Jan 1st
    assert Expiry(12, 2031).passed(new_years_eve)
    assert not Expiry(12, 2031).passed(datetime(2031, 12, 31, 20, 0, tzinfo=brasilia))


ACTIVE = CardState(Expiry(12, 2031), CardStatus.ACTIVE)


@pytest.mark.parametrize(
    ("card", "presented", "cvv_ok", "now", "declined"),
    [
        (ACTIVE, Expiry(12, 2031), True, NOW, None),
        (None, Expiry(12, 2031), True, NOW, Decline.UNKNOWN_CARD),
        (ACTIVE, Expiry(11, 2031), True, NOW, Decline.WRONG_EXPIRY),
        (ACTIVE, Expiry(12, 2031), False, NOW, Decline.WRONG_CVV),
        (ACTIVE, Expiry(12, 2031), True, datetime(2032, 1, 1, tzinfo=UTC), Decline.CARD_EXPIRED),
        (
            CardState(Expiry(12, 2031), CardStatus.BLOCKED),
            Expiry(12, 2031),
            True,
            NOW,
            Decline.CARD_BLOCKED,
        ),
        # the presented data is checked before the card's state: a wrong CVV on a blocked
        # card is a wrong CVV
        (
            CardState(Expiry(12, 2031), CardStatus.BLOCKED),
            Expiry(12, 2031),
            False,
            NOW,
            Decline.WRONG_CVV,
        ),
    ],
)
def test_why_an_authorization_is_declined(
    card: CardState | None,
    presented: Expiry,
    cvv_ok: bool,
    now: datetime,
    declined: Decline | None,
) -> None:
    assert decline_of(card, presented, cvv_ok, now) is declined


def test_what_became_of_an_authorization() -> None:
    later = NOW + timedelta(days=7)

    def status(approved: bool, resolution: Kind | None, now: datetime) -> AuthorizationStatus:
        return status_of(approved=approved, resolution=resolution, expires_at=later, now=now)

    assert status(False, None, NOW) is AuthorizationStatus.DECLINED
    assert status(True, None, NOW) is AuthorizationStatus.PENDING
    assert status(True, Kind.POST, NOW) is AuthorizationStatus.CAPTURED
    assert status(True, Kind.VOID, NOW) is AuthorizationStatus.VOIDED
    assert status(True, Kind.EXPIRE, later) is AuthorizationStatus.EXPIRED
    # past its time and not released yet: the ledger already refuses to post it
    assert status(True, None, later) is AuthorizationStatus.EXPIRED
    assert status(True, Kind.POST, later) is AuthorizationStatus.CAPTURED


def test_an_authorization_derives_three_distinct_stable_ledger_ids() -> None:
    ids = {hold_id("a"), capture_id("a"), void_id("a")}
    assert len(ids) == 3
    assert hold_id("a") == hold_id("a") != hold_id("b")
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)
