"""Insurance's topics and their payloads (JSON, amounts in integer centavos, times ISO 8601).

- ``banking.insurance.issue``: a policy asked for, waiting for the banking worker (written
  with the policy's row in one commit; keyed by the quote's id): ``{"v","policy_id",
  "quote_id"}``. The worker issues or rejects it once, however often it is delivered.
- ``banking.insurance.issued``: a policy issued, its premium charged: ``{"v","id","quote_id",
  "customer_id","account_id","premium","charge_id","payment_method","starts_at","ends_at"}``.
- ``banking.insurance.rejected``: a policy not issued: ``{"v","id","quote_id","reason",
  "detail"}`` (``quote-expired``, or the ledger's refusal of the charge).
- ``banking.insurance.cancelled``: a policy cancelled, its unused premium refunded:
  ``{"v","id","quote_id","account_id","refund","refund_id","cancelled_at"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final

import msgspec

from paycore.platform.clock import iso
from paycore.platform.persistence.db import AnyRow

ISSUE: Final = "banking.insurance.issue"
ISSUED: Final = "banking.insurance.issued"
REJECTED: Final = "banking.insurance.rejected"
CANCELLED: Final = "banking.insurance.cancelled"
TOPICS: Final = (ISSUE, ISSUED, REJECTED, CANCELLED)

VERSION = 1
Encode = Callable[[AnyRow], bytes]
"""Writes a policy's event from its row."""
_UUID_TEXT: Final = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID = Annotated[str, msgspec.Meta(pattern=_UUID_TEXT)]


class BadMessage(ValueError):
    """A message that is not one insurance could have written."""


class IssueMessage(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    v: Annotated[int, msgspec.Meta(ge=VERSION, le=VERSION)]
    policy_id: _UUID
    quote_id: _UUID


_issue = msgspec.json.Decoder(IssueMessage)
_encoder = msgspec.json.Encoder()


def encode_issue(policy_id: str, quote_id: str) -> bytes:
    return _encoder.encode(IssueMessage(VERSION, policy_id, quote_id))


def decode_issue(body: bytes) -> IssueMessage:
    try:
        return _issue.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is one
        raise BadMessage(f"not an insurance issue message: {exc}") from None


def encode_issued(policy: AnyRow) -> bytes:
    return _encoder.encode(
        {
            "v": VERSION,
            "id": policy.id,
            "quote_id": policy.quote_id,
            "customer_id": policy.customer_id,
            "account_id": policy.account_id,
            "premium": policy.premium,
            "charge_id": policy.charge_id,
            "payment_method": policy.payment_method,
            "starts_at": iso(policy.starts_at),
            "ends_at": iso(policy.ends_at),
        }
    )


def encode_rejected(policy: AnyRow) -> bytes:
    return _encoder.encode(
        {
            "v": VERSION,
            "id": policy.id,
            "quote_id": policy.quote_id,
            "reason": policy.reason,
            "detail": policy.detail,
        }
    )


def encode_cancelled(policy: AnyRow) -> bytes:
    return _encoder.encode(
        {
            "v": VERSION,
            "id": policy.id,
            "quote_id": policy.quote_id,
            "account_id": policy.account_id,
            "refund": policy.refund,
            "refund_id": policy.refund_id,
            "cancelled_at": iso(policy.cancelled_at),
        }
    )
