"""The ``payments`` topic: one accepted payment per message, keyed and identified by its
correlationId (so the broker's and the worker's deduplication both apply)."""

from __future__ import annotations

import orjson

from paycore.payments.domain import InvalidPayment, Payment, checked_cents, checked_id

TOPIC = "payments"
VERSION = 1


def encode(payment: Payment, received_at_ms: int) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "correlationId": payment.correlation_id,
            "amountCents": payment.amount_cents,
            "receivedAt": received_at_ms,
        }
    )


def decode(body: bytes) -> tuple[Payment, int]:
    """The payment and when it was received (epoch ms); ``InvalidPayment`` when the message is
    not one we could have written."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidPayment("message", "not JSON") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidPayment("message", f"not a version {VERSION} payment message")
    cents, received = data.get("amountCents"), data.get("receivedAt")
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise InvalidPayment("amountCents", "must be an integer")
    if isinstance(received, bool) or not isinstance(received, int):
        raise InvalidPayment("receivedAt", "must be epoch milliseconds")
    return Payment(checked_id(data.get("correlationId")), checked_cents(cents)), received
