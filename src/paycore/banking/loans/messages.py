"""The loans' topics and their payloads (JSON, amounts in integer centavos, rates as decimal
strings: a fraction, ``"0.0199"`` is 1.99 % a month). Each event is written with the change it
tells of, in one commit (the outbox), under a message id of its own: the same event is never
published twice with two ids.

- ``banking.loan.applications``: an application accepted over HTTP, for the banking worker to
  decide (keyed by its id).
- ``banking.loan.decided``: approved or rejected, with the reason.
- ``banking.loan.disbursed``: a loan paid out: the principal, the IOF kept out of it, what the
  account received, the plan's first and last due dates.
- ``banking.loan.installment.paid``: an instalment paid (on request, on its due date, or by an
  early payoff).
- ``banking.loan.installment.overdue``: an instalment the scheduled collection could not take
  on its due date (once; it is tried again on every run until paid).
- ``banking.loan.closed``: a loan repaid, all its instalments paid or paid off early.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Final

import msgspec

from paycore.platform.clock import iso

APPLICATIONS: Final = "banking.loan.applications"
DECIDED: Final = "banking.loan.decided"
DISBURSED: Final = "banking.loan.disbursed"
INSTALLMENT_PAID: Final = "banking.loan.installment.paid"
INSTALLMENT_OVERDUE: Final = "banking.loan.installment.overdue"
CLOSED: Final = "banking.loan.closed"
TOPICS: Final = (APPLICATIONS, DECIDED, DISBURSED, INSTALLMENT_PAID, INSTALLMENT_OVERDUE, CLOSED)

VERSION = 1
_UUID = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]
_CENTS = Annotated[int, msgspec.Meta(gt=0, le=10**15)]


class BadMessage(ValueError):
    """A message that is not one banking's loans could have written."""


class ApplicationMessage(msgspec.Struct, forbid_unknown_fields=True):
    v: Annotated[int, msgspec.Meta(ge=VERSION, le=VERSION)]
    id: _UUID
    customer_id: _UUID
    account_id: _UUID
    principal: _CENTS
    term: Annotated[int, msgspec.Meta(ge=1, le=420)]
    system: Annotated[str, msgspec.Meta(min_length=1, max_length=8)]
    monthly_rate: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    monthly_income: _CENTS


_decoder = msgspec.json.Decoder(ApplicationMessage)
_encoder = msgspec.json.Encoder()


def encode_application(
    *,
    application_id: str,
    customer_id: str,
    account_id: str,
    principal: int,
    term: int,
    system: str,
    monthly_rate: Decimal,
    monthly_income: int,
) -> bytes:
    return _encoder.encode(
        ApplicationMessage(
            VERSION,
            application_id,
            customer_id,
            account_id,
            principal,
            term,
            system,
            str(monthly_rate),
            monthly_income,
        )
    )


def decode_application(body: bytes) -> str:
    """The id of the application a message announces (the worker decides from its stored
    row, the one truth); ``BadMessage`` for anything else."""
    try:
        return _decoder.decode(body).id
    except msgspec.DecodeError as exc:
        raise BadMessage(f"not a loan application message: {exc}") from None


def encode_decided(
    application_id: str, customer_id: str, reason: str | None, detail: str, at: datetime
) -> bytes:
    return _encoder.encode(
        {
            "v": VERSION,
            "id": application_id,
            "customer_id": customer_id,
            "decision": "approved" if reason is None else "rejected",
            "reason": reason,
            "detail": detail,
            "at": iso(at),
        }
    )


def encode_disbursed(
    *,
    loan_id: str,
    customer_id: str,
    account_id: str,
    principal: int,
    iof: int,
    term: int,
    system: str,
    monthly_rate: Decimal,
    first_due: date,
    last_due: date,
    at: datetime,
) -> bytes:
    return _encoder.encode(
        {
            "v": VERSION,
            "id": loan_id,
            "customer_id": customer_id,
            "account_id": account_id,
            "principal": principal,
            "iof": iof,
            "received": principal - iof,
            "term": term,
            "system": system,
            "monthly_rate": str(monthly_rate),
            "first_due": first_due.isoformat(),
            "last_due": last_due.isoformat(),
            "at": iso(at),
        }
    )


def encode_installment(
    loan_id: str,
    number: int,
    *,
    principal: int,
    interest: int,
    by: str,
    due_date: date,
    at: datetime,
    reason: str | None = None,
) -> bytes:
    """An instalment paid (``principal`` and ``interest`` paid, ``by`` whom) or overdue
    (what is owed, and the ``reason`` the collection failed)."""
    return _encoder.encode(
        {
            "v": VERSION,
            "loan_id": loan_id,
            "number": number,
            "due_date": due_date.isoformat(),
            "principal": principal,
            "interest": interest,
            "by": by,
            "reason": reason,
            "at": iso(at),
        }
    )


def encode_closed(loan_id: str, status: str, at: datetime) -> bytes:
    return _encoder.encode({"v": VERSION, "id": loan_id, "status": status, "at": iso(at)})
