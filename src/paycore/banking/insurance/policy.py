"""An auto-insurance policy's term and what cancelling it refunds, with no database.

A policy runs one year from its start (``policy_end``). Cancelled, it gives back the premium
of the days it no longer covers, pro rata, rounded down to the centavo:

    refund = floor(premium × unused days / days of the term)

Days are spans of 24 hours counted from the start; a day begun is a day used (and a term that
is not whole days counts its last part as a day). Cancelled at or before the start, the whole
premium comes back; at or after the end, nothing. Standard library only; see
docs/banking-insurance.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from paycore.platform.clock import as_utc


def policy_end(start: datetime) -> datetime:
    """One year after ``start`` (a naive one is UTC): the same date and time, 28 February for
    a start on 29 February."""
    start = as_utc(start)
    try:
        return start.replace(year=start.year + 1)
    except ValueError:  # 29 February, and the next year has none
        return start.replace(year=start.year + 1, day=28)


def refund(premium: int, start: datetime, end: datetime, cancelled_at: datetime) -> int:
    """What cancelling at ``cancelled_at`` gives back of ``premium`` (centavos) paid for a
    policy from ``start`` to ``end`` (see the module's doc; naive instants are UTC).
    ``ValueError`` for a premium that is not whole centavos of zero or more, or an end that is
    not after the start."""
    if not isinstance(premium, int) or isinstance(premium, bool) or premium < 0:
        raise ValueError(f"the premium must be whole centavos of zero or more, not {premium!r}")
    start, end, cancelled_at = as_utc(start), as_utc(end), as_utc(cancelled_at)
    if end <= start:
        raise ValueError(f"the policy's end ({end.isoformat()}) must be after its start")
    if cancelled_at <= start:
        return premium
    if cancelled_at >= end:
        return 0
    term = _days_begun(end - start)
    used = _days_begun(cancelled_at - start)
    return premium * (term - used) // term


def _days_begun(span: timedelta) -> int:
    """The days of 24 hours ``span`` (zero or more) reaches into: a partial day counts."""
    return span.days + (1 if span.seconds or span.microseconds else 0)
