"""The gateway's credentials and webhook signatures, and its messages: the card travels only
sealed."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from paycore.gateway import messages
from paycore.gateway.crypto import new_secret, sign_webhook, verify_webhook
from paycore.gateway.domain import Card, CardFacts
from paycore.platform.cards import CardKeyError, Keyring


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


CARD = Card(number="4111111111111111", holder="Ana Lima", exp_month=12, exp_year=2030, cvv="123")


def test_secrets_are_random_and_prefixed() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("pcsk_")
    assert len(one) > 40
    assert one != two
    assert new_secret("whsec_").startswith("whsec_")


def test_webhook_signatures() -> None:
    body = b'{"id":"t1","status":"approved","error_message":""}'
    header = sign_webhook("whsec_k", 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify_webhook("whsec_k", header, body, now=1_700_000_100)
    assert not verify_webhook("whsec_k", header, body + b" ", now=1_700_000_100)
    assert not verify_webhook("whsec_other", header, body, now=1_700_000_100)
    assert not verify_webhook("whsec_k", header, body, now=1_700_001_000)  # too old: a replay
    assert not verify_webhook("whsec_k", "v1=abc", body, now=1_700_000_000)


def test_the_transaction_message_carries_the_card_only_sealed() -> None:
    ring = Keyring.parse(f"k1:{key()}")
    sealed = messages.seal_card(ring, "tx-1", CARD.facts())
    body = messages.encode_transaction("tx-1", "acc-1", 1050, sealed)
    assert b"4111111111111111" not in body
    assert b"Ana Lima" not in body
    decoded = messages.decode_transaction(body)
    assert (decoded.id, decoded.account_id, decoded.amount_cents) == ("tx-1", "acc-1", 1050)
    assert messages.open_card(ring, decoded) == CARD.facts()
    # moved onto another transaction, the envelope no longer opens
    moved = orjson.loads(body) | {"id": "tx-2"}
    with pytest.raises(CardKeyError):
        messages.open_card(ring, messages.decode_transaction(orjson.dumps(moved)))


@pytest.mark.parametrize(
    ("number", "cvv", "cvv_ok"),
    [("4111111111111111", "987", True), ("378282246310005", "987", False)],
)
def test_the_cvv_is_judged_before_sealing_and_never_travels(
    number: str, cvv: str, cvv_ok: bool
) -> None:
    """The envelope holds what the processor decides on and the CVV's verdict: the CVV and the
    holder's name are not in it, even sealed (issue 22, item 12)."""
    ring = Keyring.parse(f"k1:{key()}")
    card = Card(number=number, holder="Ana Lima", exp_month=12, exp_year=2030, cvv=cvv)
    body = messages.encode_transaction(
        "tx-1", "acc-1", 1050, messages.seal_card(ring, "tx-1", card.facts())
    )
    decoded = messages.decode_transaction(body)
    plain = orjson.loads(ring.open(decoded.card, "tx-1"))
    assert plain == {"number": number, "exp_month": 12, "exp_year": 2030, "cvv_ok": cvv_ok}
    assert messages.open_card(ring, decoded).cvv_ok is cvv_ok


def test_messages_published_before_the_upgrade_are_still_decided() -> None:
    """A version 1 message (its envelope held the CVV) in flight across the upgrade: its CVV
    is judged on arrival, with the same verdict."""
    ring = Keyring.parse(f"k1:{key()}")
    for cvv, ok in (("123", True), ("12", False)):
        legacy = {
            "number": CARD.number,
            "cvv": cvv,
            "holder": "Ana Lima",
            "exp_month": 12,
            "exp_year": 2030,
        }
        sealed = ring.seal(orjson.dumps(legacy), "tx-1")
        body = orjson.loads(messages.encode_transaction("tx-1", "acc-1", 1050, sealed))
        decoded = messages.decode_transaction(orjson.dumps(body | {"version": 1}))
        assert messages.open_card(ring, decoded) == CardFacts(CARD.number, 12, 2030, ok)


@pytest.mark.parametrize("verdict", [None, "true", 1])
def test_an_envelope_without_a_cvv_verdict_is_refused(verdict: object) -> None:
    ring = Keyring.parse(f"k1:{key()}")
    plain = {"number": CARD.number, "exp_month": 12, "exp_year": 2030, "cvv_ok": verdict}
    body = messages.encode_transaction("tx-1", "a", 1, ring.seal(orjson.dumps(plain), "tx-1"))
    with pytest.raises(messages.BadMessage, match="cvv_ok"):
        messages.open_card(ring, messages.decode_transaction(body))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"version":3}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":1,"card":"x"}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":0,'
        b'"card":{"kid":"k","nonce":"AA==","ciphertext":"AA=="}}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":1.5,'
        b'"card":{"kid":"k","nonce":"AA==","ciphertext":"AA=="}}',
        b'{"version":1,"id":"t","account_id":"a","amount_cents":1,'
        b'"card":{"kid":"k","nonce":"!!","ciphertext":"AA=="}}',
        b'{"version":1,"id":"' + b"t" * 37 + b'","account_id":"a","amount_cents":1,'
        b'"card":{"kid":"k","nonce":"AA==","ciphertext":"AA=="}}',
    ],
)
def test_malformed_transaction_messages_are_refused(body: bytes) -> None:
    with pytest.raises(messages.BadMessage):
        messages.decode_transaction(body)


def test_result_messages_have_the_seed_shape() -> None:
    body = messages.encode_result("t1", "rejected", "invalid cvv")
    assert orjson.loads(body) == {"id": "t1", "status": "rejected", "error_message": "invalid cvv"}
    assert messages.decode_result(body).error_message == "invalid cvv"
    with pytest.raises(messages.BadMessage):
        messages.decode_result(b'{"id":"t1","status":"pending","error_message":""}')
