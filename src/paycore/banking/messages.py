"""Banking's topics and their payloads (JSON, amounts in integer minor units).

- ``banking.transfers``: a transfer a customer asked for, accepted and waiting for the ledger
  worker (keyed by the transfer id; one message per transfer id, which the request table
  holds once; a message delivered again is one, by its message id, and the journal's unique
  transfer id makes a repeat of the transfer a replay).
- ``banking.transfer.posted``: a transfer the ledger applied (its journal entry).
- ``banking.transfer.rejected``: a transfer the ledger refused, with the reason.
- ``banking.pix.settled``: a Pix payment settled (keyed by its end-to-end id).
- ``banking.pix.refunded``: a refund (devolução) of a Pix payment settled (keyed by the
  payment's end-to-end id), with what is refunded of the payment so far.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from paycore.banking.ledger.domain import Entry, Kind, Transfer
from paycore.platform.clock import iso

REQUESTS: Final = "banking.transfers"
POSTED: Final = "banking.transfer.posted"
REJECTED: Final = "banking.transfer.rejected"
TOPICS: Final = (REQUESTS, POSTED, REJECTED)

VERSION = 1
_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
_ACCOUNT = Annotated[str, msgspec.Meta(min_length=1, max_length=36)]


class BadMessage(ValueError):
    """A message that is not one banking could have written."""


class TransferMessage(msgspec.Struct, forbid_unknown_fields=True):
    v: Annotated[int, msgspec.Meta(ge=VERSION, le=VERSION)]
    id: _ID
    debit_account_id: _ACCOUNT
    credit_account_id: _ACCOUNT
    amount: Annotated[int, msgspec.Meta(gt=0)]
    currency: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


_decoder = msgspec.json.Decoder(TransferMessage)
_encoder = msgspec.json.Encoder()


def encode_request(transfer: Transfer) -> bytes:
    return _encoder.encode(
        TransferMessage(
            VERSION,
            transfer.id,
            transfer.debit_account_id or "",
            transfer.credit_account_id or "",
            transfer.amount,
            transfer.currency or "",
            transfer.code,
        )
    )


def decode_request(body: bytes) -> Transfer:
    try:
        m = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BadMessage(f"not a banking transfer message: {exc}") from None
    return Transfer(
        id=m.id,
        kind=Kind.SINGLE,
        debit_account_id=m.debit_account_id,
        credit_account_id=m.credit_account_id,
        amount=m.amount,
        currency=m.currency,
        code=m.code,
    )


POSTED_FIELDS: Final = (
    "id",
    "kind",
    "seq",
    "debit_account_id",
    "credit_account_id",
    "amount",
    "currency",
    "code",
    "pending_id",
    "at",
)
"""What a posted event says of its entry, in this order (the journal's columns of the same
names)."""


def posted_fields(entry: Entry) -> tuple[Any, ...]:
    """An entry's ``POSTED_FIELDS``."""
    return tuple(getattr(entry, name) for name in POSTED_FIELDS)


def encode_posted(fields: Sequence[Any]) -> bytes:
    """The posted event of an entry, from its ``POSTED_FIELDS`` (``posted_fields``, or the
    journal's row)."""
    *values, at = fields
    return _encoder.encode(
        {"v": VERSION, **dict(zip(POSTED_FIELDS[:-1], values, strict=True)), "at": _moment(at)}
    )


@functools.lru_cache(maxsize=4)
def _moment(at: datetime) -> str:
    """``iso`` of an entry's time: the entries of a batch share one, written once."""
    return iso(at)


def encode_rejected(transfer_id: str, reason: str, detail: str) -> bytes:
    return _encoder.encode({"v": VERSION, "id": transfer_id, "reason": reason, "detail": detail})


# --- Pix (``banking.pix``): not among ``TOPICS``, which are the ledger's ---------------------

PIX_SETTLED: Final = "banking.pix.settled"
PIX_REFUNDED: Final = "banking.pix.refunded"
PIX_TOPICS: Final = (PIX_SETTLED, PIX_REFUNDED)


def encode_pix_settled(
    *,
    end_to_end_id: str,
    transfer_id: str,
    payer_account_id: str,
    payee_account_id: str,
    amount: int,
    key: str,
    txid: str | None,
    at: datetime,
) -> bytes:
    """A Pix payment settled: its ledger transfer moved ``amount`` centavos from the payer's
    account to the payee's (the account of ``key``)."""
    return _encoder.encode(
        {
            "v": VERSION,
            "end_to_end_id": end_to_end_id,
            "transfer_id": transfer_id,
            "payer_account_id": payer_account_id,
            "payee_account_id": payee_account_id,
            "amount": amount,
            "currency": "BRL",
            "key": key,
            "txid": txid,
            "at": iso(at),
        }
    )


def encode_pix_refunded(
    *,
    return_id: str,
    end_to_end_id: str,
    transfer_id: str,
    payer_account_id: str,
    payee_account_id: str,
    amount: int,
    refunded: int,
    at: datetime,
) -> bytes:
    """A refund of a Pix payment settled: its ledger transfer moved ``amount`` centavos back
    from the payee's account to the payer's; ``refunded`` is what is refunded so far."""
    return _encoder.encode(
        {
            "v": VERSION,
            "id": return_id,
            "end_to_end_id": end_to_end_id,
            "transfer_id": transfer_id,
            "payer_account_id": payer_account_id,
            "payee_account_id": payee_account_id,
            "amount": amount,
            "refunded": refunded,
            "currency": "BRL",
            "at": iso(at),
        }
    )
