"""An auto-insurance policy's term and what cancelling it refunds, with no database.

A policy runs one year from its start (``policy_end``). Cancelled, it gives back the premium
of the days it no longer covers, pro rata, rounded down to the centavo:

    refund = floor(premium × unused days / days of the term)

Days are spans of 24 hours counted from the start; a day begun is a day used (and a term that
is not whole days counts its last part as a day). Cancelled at or before the start, the whole
premium comes back; at or after the end, nothing.

A policy is asked for with a quote (``requested``), then ``issued`` (its premium charged) or
``rejected`` (with the reason); an issued one may be ``cancelled`` once. A quote buys one
policy: its id is derived from the quote's, and the ids of the ledger transfers that charge
and refund its premium from the policy's, so that doing either again is the same transfer.
Standard library only; see docs/banking-insurance.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from paycore.platform.clock import as_utc
from paycore.platform.errors import DomainError

POLICIES: Final = uuid.UUID("5d9877b8-88f3-47df-9000-00000000a170")
"""The namespace of the ids derived here (a policy's from its quote's, its transfers')."""


class PolicyStatus(StrEnum):
    REQUESTED = "requested"  # asked for, waiting for the banking worker
    ISSUED = "issued"  # the premium charged: it covers from its start to its end
    REJECTED = "rejected"  # not issued (``reason``): the quote had expired, the charge failed
    CANCELLED = "cancelled"  # issued, then cancelled: the unused part refunded


QUOTE_EXPIRED: Final = "quote-expired"
"""Why a policy asked for after its quote's ``valid_until`` is rejected (the other reasons are
the ledger's refusals of the premium's charge: ``insufficient-funds``, ``account-closed`` …)."""


class QuoteTaken(DomainError):
    """The quote buys a policy already, asked for on another account: a quote buys one."""

    code = "quote-taken"
    status = 409


class PolicyNotIssued(DomainError):
    """The policy is not issued (still requested, or rejected): there is nothing to cancel."""

    code = "policy-not-issued"
    status = 409


class PolicyCancelled(DomainError):
    """The policy is cancelled already: it is cancelled (and refunded) once."""

    code = "policy-cancelled"
    status = 409


def policy_id_of(quote_id: str) -> str:
    """The id of the one policy ``quote_id`` buys."""
    return str(uuid.uuid5(POLICIES, f"policy:{quote_id}"))


def premium_transfer_id(policy_id: str) -> str:
    """The id of the ledger transfer that charges the policy's premium."""
    return str(uuid.uuid5(POLICIES, f"premium:{policy_id}"))


def refund_transfer_id(policy_id: str) -> str:
    """The id of the ledger transfer that refunds the policy's unused premium."""
    return str(uuid.uuid5(POLICIES, f"refund:{policy_id}"))


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
