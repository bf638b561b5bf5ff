"""UTC time helpers; every timestamp in paycore is UTC, ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and a ``Z`` suffix, e.g. ``2025-07-15T12:34:56.000Z``;
    a naive value is taken as UTC, never as the host's local time."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` with its offset, or taken as UTC if it has none (a query's timestamp)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
