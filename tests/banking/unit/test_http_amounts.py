"""An amount read from a request body reaches the ledger as a plain int of cents: the body's
``Cents`` (an int subclass) is refused by msgspec's encoder, so a batch transfer's entry could
not be published (a 500 found by bench/banking.py)."""

from __future__ import annotations

from paycore.banking import messages
from paycore.banking.ledger_api import BatchIn, _transfer
from paycore.platform.web.bodies import read

BODY = b"""{"transfers": [{"id": "0193e0f2-8c4f-7c4e-9a43-0d6d1c7e2a11",
    "amount": 12.30, "currency": "BRL",
    "debit_account_id": "0193e0f2-8c4f-7c4e-9a43-0d6d1c7e2a12",
    "credit_account_id": "0193e0f2-8c4f-7c4e-9a43-0d6d1c7e2a13"}]}"""


def test_a_batch_transfer_amount_is_plain_cents_and_its_message_encodes() -> None:
    transfer = _transfer(read(BatchIn, BODY, "application/json").transfers[0])

    assert type(transfer.amount) is int
    assert transfer.amount == 1230
    assert messages.decode_request(messages.encode_request(transfer)).amount == 1230
