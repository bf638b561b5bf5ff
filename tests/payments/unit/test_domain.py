"""Payments rules: request checks, time windows, routing and the circuit breaker."""

from __future__ import annotations

import pytest

from paycore.payments import messages
from paycore.payments.domain import (
    DEFAULT,
    FALLBACK,
    InvalidPayment,
    InvalidWindow,
    Outcome,
    Payment,
    Router,
    parse_bound,
    requested_at_text,
)

CID = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"


def test_window_bounds_are_inclusive_milliseconds_rounded_inwards() -> None:
    start = parse_bound("2025-07-15T12:34:56.000Z", upper=False)
    assert start is not None
    assert requested_at_text(start) == "2025-07-15T12:34:56.000Z"
    assert parse_bound("2025-07-15T12:34:56.0005Z", upper=False) == start + 1
    assert parse_bound("2025-07-15T12:34:56.0005Z", upper=True) == start
    assert parse_bound("2025-07-15T09:34:56-03:00", upper=True) == start
    assert parse_bound("2025-07-15T12:34:56", upper=True) == start  # naive means UTC
    assert parse_bound(None, upper=True) is None
    with pytest.raises(InvalidWindow) as refused:
        parse_bound("yesterday", upper=False)
    assert refused.value.extra["errors"][0]["loc"] == ["query", "from"]


def test_topic_messages_round_trip_and_foreign_ones_are_refused() -> None:
    payment = Payment(CID, 1990)
    assert messages.decode(messages.encode(payment, 1_700_000_000_000)) == (
        payment,
        1_700_000_000_000,
    )
    for body in (b"nope", b"[]", b'{"v":2}', b'{"v":1,"correlationId":"x","amountCents":1}'):
        with pytest.raises(InvalidPayment):
            messages.decode(body)


def test_router_prefers_the_cheaper_default_while_it_is_healthy_and_fast() -> None:
    router = Router(slow_ms=1500)
    assert router.choose(now=0) == DEFAULT
    router.states[DEFAULT].on_health(failing=False, min_response_ms=1000)
    assert router.choose(now=0) == DEFAULT
    router.states[DEFAULT].on_health(failing=False, min_response_ms=2000)
    assert router.choose(now=0) == FALLBACK  # default too slow, fallback fast
    router.states[DEFAULT].on_health(failing=True, min_response_ms=0)
    assert router.choose(now=0) == FALLBACK
    router.states[FALLBACK].on_health(failing=True, min_response_ms=0)
    assert router.choose(now=0) is None  # both down: payments wait


def test_router_uses_the_faster_processor_when_both_are_slow() -> None:
    router = Router(slow_ms=1500)
    router.states[DEFAULT].on_health(failing=False, min_response_ms=3000)
    router.states[FALLBACK].on_health(failing=False, min_response_ms=2000)
    assert router.choose(now=0) == FALLBACK


def test_breaker_opens_after_repeated_failures_and_closes_on_success() -> None:
    router = Router(breaker_threshold=3, breaker_cooldown=0.5)
    for _ in range(2):
        router.record(DEFAULT, Outcome.REFUSED, 5, now=10.0)
    assert router.choose(now=10.0) == DEFAULT
    router.record(DEFAULT, Outcome.UNKNOWN, 5, now=10.0)
    assert router.choose(now=10.0) == FALLBACK
    assert not router.may_ask(DEFAULT, now=10.2)
    assert router.may_ask(DEFAULT, now=10.6)  # trial call allowed after the cool-down
    router.record(DEFAULT, Outcome.REFUSED, 5, now=10.6)  # trial failed: longer cool-down
    assert not router.may_ask(DEFAULT, now=11.5)
    assert router.may_ask(DEFAULT, now=11.7)
    router.record(DEFAULT, Outcome.STORED, 5, now=11.7)
    assert router.choose(now=11.7) == DEFAULT


def test_a_processor_reporting_failure_recovers_when_a_call_succeeds() -> None:
    router = Router()
    router.states[DEFAULT].on_health(failing=True, min_response_ms=0)
    router.record(DEFAULT, Outcome.STORED, 3, now=1)
    assert router.choose(now=1) == DEFAULT


def test_timeouts_outlast_any_delay_and_grow_with_latency_and_retries() -> None:
    router = Router(min_timeout=6.0)
    assert router.timeout_seconds(DEFAULT, 1) == 6.0
    router.states[DEFAULT].on_health(failing=False, min_response_ms=4000)
    assert router.timeout_seconds(DEFAULT, 1) == 8.5
    assert router.timeout_seconds(DEFAULT, 2) == 17.0
    assert router.timeout_seconds(DEFAULT, 10) == 60.0


def test_a_processor_whose_calls_hang_is_treated_as_slow_before_any_report() -> None:
    router = Router(slow_ms=1500)
    router.states[DEFAULT].oldest_call_ms = 1200
    assert router.choose(now=0) == DEFAULT
    router.states[DEFAULT].oldest_call_ms = 1600  # a call has waited longer than slow_ms
    assert router.choose(now=0) == FALLBACK


def test_a_slow_failure_counts_as_slow() -> None:
    router = Router(slow_ms=1500, breaker_threshold=5)
    router.record(DEFAULT, Outcome.REFUSED, 5000)
    assert router.choose(now=0) == FALLBACK
