"""UTC ISO 8601 timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from paycore.platform.clock import iso, parse_iso, utcnow


def test_iso_has_milliseconds_and_z_suffix() -> None:
    moment = datetime(2025, 7, 15, 12, 34, 56, 789_123, tzinfo=UTC)
    assert iso(moment) == "2025-07-15T12:34:56.789Z"
    assert iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05.000Z"
    assert iso(datetime(999, 1, 2, tzinfo=UTC)) == "0999-01-02T00:00:00.000Z"  # four-digit year


def test_iso_converts_other_offsets_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert iso(datetime(2025, 7, 15, 1, 0, 0, 5_000, tzinfo=plus_two)) == "2025-07-14T23:00:00.005Z"


@pytest.mark.usefixtures("local_time_utc_minus_3")
def test_iso_takes_naive_values_as_utc_whatever_the_host_time_zone() -> None:
    # SQLite hands back naive datetimes; every paycore timestamp is UTC, as parse_iso assumes
    naive = datetime(2025, 7, 15, 12, 0, 0)
    assert iso(naive) == "2025-07-15T12:00:00.000Z"
    assert iso(naive) == iso(parse_iso("2025-07-15T12:00:00"))


def test_parse_iso_z_suffix_with_milliseconds() -> None:
    parsed = parse_iso("2025-07-15T12:34:56.789Z")
    assert parsed == datetime(2025, 7, 15, 12, 34, 56, 789_000, tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


def test_parse_iso_naive_is_utc() -> None:
    parsed = parse_iso("2025-07-15T12:34:56")
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)
    assert parsed == datetime(2025, 7, 15, 12, 34, 56, tzinfo=UTC)


def test_parse_iso_keeps_the_instant_of_an_offset() -> None:
    parsed = parse_iso("2025-07-15T14:34:56.000+02:00")
    assert parsed == datetime(2025, 7, 15, 12, 34, 56, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "2025-13-01T00:00:00Z", "None"])
def test_parse_iso_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        parse_iso(text)


def test_iso_parse_round_trip_to_the_millisecond() -> None:
    moment = datetime(2026, 11, 22, 0, 31, 7, 654_321, tzinfo=UTC)
    assert parse_iso(iso(moment)) == moment.replace(microsecond=654_000)


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
