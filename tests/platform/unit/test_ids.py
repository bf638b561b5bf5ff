"""UUIDv7 identifiers (RFC 9562): version, variant, time order, uniqueness."""

from __future__ import annotations

import itertools
import uuid
from types import SimpleNamespace

import pytest

from paycore.platform import ids
from paycore.platform.ids import uuid7


def _fixed_clock(monkeypatch: pytest.MonkeyPatch, nanos: list[int]) -> None:
    """Make ``ids.uuid7`` read the given unix times (in ns), one per call."""
    ticks = iter(nanos)
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: next(ticks)))


def test_uuid7_version_and_variant() -> None:
    for _ in range(200):
        text = uuid7()
        value = uuid.UUID(text)
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert str(value) == text  # canonical lower-case 8-4-4-4-12 form


def test_uuid7_embeds_the_unix_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    millis = 1_763_771_543_123
    _fixed_clock(monkeypatch, [millis * 1_000_000 + 999_999])
    value = uuid.UUID(uuid7())
    assert value.int >> 80 == millis
    assert value.version == 7


def test_uuid7_sorts_by_time_across_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    start = 1_700_000_000_000
    # five ids in each of 50 consecutive milliseconds, plus a jump of several seconds
    moments = [
        (start + ms) * 1_000_000 + sub for ms in range(50) for sub in (0, 1, 500, 900_000, 999_999)
    ]
    moments += [(start + 10_000) * 1_000_000]
    _fixed_clock(monkeypatch, moments)
    made = [uuid7() for _ in moments]
    by_ms = [list(group) for _, group in itertools.groupby(made, key=lambda t: t[:13])]
    assert len(by_ms) == 51
    ordered = sorted(made)
    # every id of an earlier millisecond sorts before every id of a later one
    for earlier, later in itertools.pairwise(by_ms):
        assert max(earlier) < min(later)
        assert ordered.index(max(earlier)) < ordered.index(min(later))
    assert [uuid.UUID(t).int >> 80 for t in ordered] == sorted(uuid.UUID(t).int >> 80 for t in made)


def test_uuid7_unique_over_10k() -> None:
    made = [uuid7() for _ in range(10_000)]
    assert len(set(made)) == 10_000


def test_uuid7_unique_within_one_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    _fixed_clock(monkeypatch, [1_700_000_000_000_000_000] * 2_000)
    made = [uuid7() for _ in range(2_000)]
    assert len(set(made)) == 2_000
    assert {uuid.UUID(t).int >> 80 for t in made} == {1_700_000_000_000}
