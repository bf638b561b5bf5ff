"""The processor's rules at every boundary, in SPEC 001's order, with its exact messages."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from paycore.gateway.domain import (
    AMOUNT_TOO_LOW,
    INVALID_CVV,
    INVALID_MONTH,
    INVALID_NUMBER,
    INVALID_YEAR,
    OVER_LIMIT,
    Card,
    Decision,
    cvv_valid,
    decide,
)
from paycore.platform.cards import brand_of, luhn_valid

TODAY = date(2026, 6, 15)


def with_check_digit(prefix: str, length: int) -> str:
    """A number of ``length`` digits starting with ``prefix`` whose last digit makes it pass
    the Luhn check."""
    body = prefix + "0" * (length - len(prefix) - 1)
    for digit in "0123456789":
        if luhn_valid(body + digit):
            return body + digit
    raise AssertionError("unreachable")


NUMBERS = {
    "visa": ["4111111111111111", "4222222222222", with_check_digit("4", 19)],
    "mastercard": ["5555555555554444", "2221000000000009", with_check_digit("2720", 16)],
    "amex": ["378282246310005", "371449635398431", with_check_digit("34", 15)],
    "discover": ["6011111111111117", with_check_digit("65", 16), with_check_digit("644", 19)],
    "diners": ["30569309025904", "36227206271667", with_check_digit("38", 16)],
    "jcb": ["3530111333300000", "3566002020360505", with_check_digit("3589", 19)],
    "elo": ["6362970000457013", with_check_digit("504175", 16), with_check_digit("650031", 16)],
    "hipercard": ["6062825624254001", with_check_digit("384100", 19)],
}


def card(number: str = "4111111111111111", **changes: object) -> Card:
    base = Card(number=number, holder="Ana Lima", exp_month=12, exp_year=2030, cvv="123")
    return replace(base, **changes)  # type: ignore[arg-type]


def rejected(message: str) -> Decision:
    return Decision("rejected", message)


APPROVED = Decision("approved", "")


@pytest.mark.parametrize(
    ("brand", "number"), [(b, n) for b, numbers in NUMBERS.items() for n in numbers]
)
def test_each_brand_is_recognised_and_approved(brand: str, number: str) -> None:
    assert brand_of(number) == brand
    cvv = "1234" if brand == "amex" else "123"
    assert decide(card(number, cvv=cvv), 10_00, TODAY) == APPROVED


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # Luhn digit wrong
        "5555555555554440",
        "378282246310006",
        "6362970000457014",  # Elo, Luhn digit wrong
        "4111 1111 1111 1111",  # separators are the API's to strip, never the processor's
        "411111111111111a",
        "",
        "0000000000000000",  # passes Luhn, no brand
        "9111111111111111",
        "41111111111111111",  # Visa prefix, 17 digits: no Visa length
        "3782822463100",  # Amex prefix, 13 digits
    ],
)
def test_invalid_numbers_are_rejected(number: str) -> None:
    assert decide(card(number), 10_00, TODAY) == rejected(INVALID_NUMBER)


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("7992739871x")
    assert not luhn_valid("٤١١١")  # Arabic-Indic digits are not card digits


@pytest.mark.parametrize(("month", "ok"), [(0, False), (1, True), (12, True), (13, False)])
def test_expiration_month_must_be_1_to_12(month: int, ok: bool) -> None:
    assert decide(card(exp_month=month), 10_00, TODAY) == (
        APPROVED if ok else rejected(INVALID_MONTH)
    )


@pytest.mark.parametrize(
    ("month", "year", "expected"),
    [
        (12, 2025, rejected(INVALID_YEAR)),  # last year
        (1, 2026, rejected(INVALID_MONTH)),  # a past month this year
        (5, 2026, rejected(INVALID_MONTH)),  # last month
        (6, 2026, APPROVED),  # valid through the end of its month
        (7, 2026, APPROVED),
        (1, 2027, APPROVED),
    ],
)
def test_expiry_is_checked_to_the_month(month: int, year: int, expected: Decision) -> None:
    assert decide(card(exp_month=month, exp_year=year), 10_00, TODAY) == expected


@pytest.mark.parametrize(
    ("number", "cvv", "ok"),
    [
        ("4111111111111111", "123", True),
        ("4111111111111111", "12", False),
        ("4111111111111111", "1234", False),
        ("4111111111111111", "", False),
        ("4111111111111111", "12a", False),
        ("378282246310005", "1234", True),
        ("378282246310005", "123", False),
        ("378282246310005", "12345", False),
        ("5555555555554444", "000", True),
    ],
)
def test_cvv_is_3_digits_or_4_for_amex(number: str, cvv: str, ok: bool) -> None:
    assert decide(card(number, cvv=cvv), 10_00, TODAY) == (
        APPROVED if ok else rejected(INVALID_CVV)
    )


@pytest.mark.parametrize(
    ("cents", "expected"),
    [
        (1, rejected(AMOUNT_TOO_LOW)),
        (99, rejected(AMOUNT_TOO_LOW)),  # 0.99
        (100, APPROVED),  # 1.00
        (100_000, APPROVED),  # 1000.00
        (100_001, rejected(OVER_LIMIT)),  # 1000.01
        (10**12, rejected(OVER_LIMIT)),
    ],
)
def test_amount_limits(cents: int, expected: Decision) -> None:
    assert decide(card(), cents, TODAY) == expected


def test_exact_messages() -> None:
    assert (INVALID_NUMBER, INVALID_MONTH, INVALID_YEAR, INVALID_CVV) == (
        "invalid credit card number",
        "invalid expiration month",
        "invalid expiration year",
        "invalid cvv",
    )
    assert AMOUNT_TOO_LOW == "the amount must be greater than 1"
    assert OVER_LIMIT == "you dont have limit for this transaction"


def test_rules_apply_in_order() -> None:
    everything_wrong = card("4111111111111112", exp_month=13, exp_year=2000, cvv="1")
    assert decide(everything_wrong, 1, TODAY).error_message == INVALID_NUMBER
    assert decide(replace(everything_wrong, number="4111111111111111"), 1, TODAY).error_message == (
        INVALID_MONTH
    )
    expired = card(exp_year=2000, cvv="1")
    assert decide(expired, 1, TODAY).error_message == INVALID_YEAR
    assert decide(card(cvv="1"), 1, TODAY).error_message == INVALID_CVV
    assert decide(card(), 1, TODAY).error_message == AMOUNT_TOO_LOW


def test_a_card_never_shows_its_number_or_cvv() -> None:
    text = repr(card("4111111111111111", cvv="987"))
    assert "4111111111111111" not in text
    assert "987" not in text
    assert "1111" in text


def test_the_processor_decides_the_same_from_the_facts_the_api_sends() -> None:
    """The API judges the CVV and sends only its verdict (issue 22, item 12): every rule
    gives the same decision, in the same order, from those facts."""
    cases = [
        card("4111111111111112", exp_month=13, exp_year=2000, cvv="1"),
        card(exp_month=13, cvv="1"),
        card(exp_year=2000, cvv="1"),
        card(exp_month=5, exp_year=TODAY.year, cvv="1"),
        card(cvv="1"),
        card("378282246310005", cvv="123"),
        card("378282246310005", cvv="1234"),
        card(cvv="12a"),
        card(),
    ]
    for each in cases:
        facts = each.facts()
        assert facts.cvv_ok is cvv_valid(each.number, each.cvv)
        for cents in (1, 10_00, 100_001):
            assert decide(facts, cents, TODAY) == decide(each, cents, TODAY)
    assert "4111111111111111" not in repr(card().facts())
