"""Wire formats of the gateway.

``transactions`` (gateway API -> processor), version 2::

    {"version": 2, "id": "<uuid>", "account_id": "<uuid>", "amount_cents": 1050,
     "card": {"kid": "k1", "nonce": "<base64>", "ciphertext": "<base64>"}}

The card envelope (AES-GCM, bound to the transaction id) holds what the processor decides on,
``{"number", "exp_month", "exp_year", "cvv_ok"}``: the number never travels in clear, and the
CVV does not travel at all (the API judged it: ``cvv_ok``). The holder's name is not sent.
Version 1, published before the CVV was judged at the edge, sealed
``{"number", "cvv", "holder", "exp_month", "exp_year"}``; it is still read, so messages in
flight across an upgrade are decided (their CVV is judged on arrival and dropped).

``transactions_result`` (processor -> gateway), exactly the seed's shape::

    {"id": "<uuid>", "status": "approved" | "rejected", "error_message": ""}
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

import orjson

from paycore.gateway.domain import APPROVED, REJECTED, CardFacts, cvv_valid
from paycore.platform.cards import Keyring, Sealed
from paycore.platform.messaging.bus import dead_letter_topic

TRANSACTIONS: Final = "transactions"
RESULTS: Final = "transactions_result"
CARD_TOPICS: Final = (TRANSACTIONS, dead_letter_topic(TRANSACTIONS))  # carry sealed cards
VERSION: Final = 2
CVV_SEALED: Final = 1  # the former version, whose envelope held the CVV itself
MAX_CENTS: Final = 2**63


class BadMessage(ValueError):
    """The bytes are not a valid message of the expected format."""


@dataclass(frozen=True, slots=True)
class TransactionMessage:
    id: str
    account_id: str
    amount_cents: int
    card: Sealed
    version: int = VERSION


@dataclass(frozen=True, slots=True)
class ResultMessage:
    id: str
    status: str
    error_message: str


def seal_card(keyring: Keyring, transaction_id: str, card: CardFacts) -> Sealed:
    plain = orjson.dumps(
        {
            "number": card.number,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "cvv_ok": card.cvv_ok,
        }
    )
    return keyring.seal(plain, transaction_id)


def open_card(keyring: Keyring, message: TransactionMessage) -> CardFacts:
    """Decrypt the card; ``CardKeyError`` if the key is unknown or the envelope was altered,
    ``BadMessage`` if what it holds is not a card."""
    data = _object(keyring.open(message.card, message.id))
    try:
        number = _str(data, "number")
        if message.version == CVV_SEALED:
            verdict: object = cvv_valid(number, _str(data, "cvv"))
        else:
            verdict = data.get("cvv_ok")
        if not isinstance(verdict, bool):
            raise BadMessage("cvv_ok must be true or false")
        return CardFacts(number, _int(data, "exp_month"), _int(data, "exp_year"), verdict)
    except BadMessage as exc:
        raise BadMessage(f"card envelope: {exc}") from None


def encode_transaction(
    transaction_id: str, account_id: str, amount_cents: int, sealed: Sealed
) -> bytes:
    return orjson.dumps(
        {
            "version": VERSION,
            "id": transaction_id,
            "account_id": account_id,
            "amount_cents": amount_cents,
            "card": {
                "kid": sealed.kid,
                "nonce": base64.b64encode(sealed.nonce).decode(),
                "ciphertext": base64.b64encode(sealed.ciphertext).decode(),
            },
        }
    )


def decode_transaction(body: bytes) -> TransactionMessage:
    data = _object(body)
    version = data.get("version")
    if version not in (VERSION, CVV_SEALED) or type(version) is not int:
        raise BadMessage(f"unsupported version {version!r}")
    card = data.get("card")
    if not isinstance(card, dict):
        raise BadMessage("card must be an object")
    amount = _int(data, "amount_cents")
    if not 0 < amount < MAX_CENTS:
        raise BadMessage("amount_cents must be positive and below 2**63")
    return TransactionMessage(
        id=_id(data, "id"),
        account_id=_id(data, "account_id"),
        amount_cents=amount,
        card=Sealed(_str(card, "kid"), _bytes(card, "nonce"), _bytes(card, "ciphertext")),
        version=version,
    )


def encode_result(transaction_id: str, status: str, error_message: str) -> bytes:
    return orjson.dumps({"id": transaction_id, "status": status, "error_message": error_message})


def decode_result(body: bytes) -> ResultMessage:
    data = _object(body)
    status = _str(data, "status")
    if status not in (APPROVED, REJECTED):
        raise BadMessage(f"status must be approved or rejected, not {status!r}")
    message = data.get("error_message")
    if message is None:
        message = ""
    if not isinstance(message, str) or len(message) > 200:
        raise BadMessage("error_message must be a string of at most 200 characters")
    return ResultMessage(_id(data, "id"), status, message)


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadMessage("expected a JSON object")
    return data


def _str(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadMessage(f"{field} must be a non-empty string of at most 200 characters")
    return value


def _id(data: dict[str, Any], field: str) -> str:
    value = _str(data, field)
    if len(value) > 36:
        raise BadMessage(f"{field} must be an id of at most 36 characters")
    return value


def _int(data: dict[str, Any], field: str) -> int:
    value = data.get(field)
    if type(value) is not int:
        raise BadMessage(f"{field} must be an integer")
    return value


def _bytes(data: dict[str, Any], field: str) -> bytes:
    value = data.get(field)
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise BadMessage(f"{field} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise BadMessage(f"{field} must be base64") from None
