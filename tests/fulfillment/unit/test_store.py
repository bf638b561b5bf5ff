"""The fulfillment content hash keeps the form earlier versions stored, so a redelivered order
stored by one of them is still told from a clashing one."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import orjson

from paycore.fulfillment.domain import order_to_dict
from paycore.fulfillment.generator import generate
from paycore.fulfillment.messages import decode
from paycore.fulfillment.store import content_hash


def _stored_form(order: object) -> str:
    """The hash as earlier versions computed it: sorted-key orjson of the order's dict."""
    data = order_to_dict(order)  # type: ignore[arg-type]
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def test_the_content_hash_is_the_stored_form_for_generated_orders() -> None:
    for body, _ in generate(500, bad_rate=0.0, seed=3):
        order = decode(body)
        assert content_hash(order) == _stored_form(order)


def test_the_content_hash_is_the_stored_form_for_any_text() -> None:
    order = decode(next(iter(generate(1, bad_rate=0.0, seed=4)))[0])
    rng = random.Random(9)
    alphabet = [chr(c) for c in range(1, 0x3000)] + ["\U0001f600", "\u2028", '"', "\\", "/"]
    for _ in range(2_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        changed = dataclasses.replace(order, customer_id=text, entry=text[::-1])
        assert content_hash(changed) == _stored_form(changed), repr(text)


def test_any_change_changes_the_content_hash() -> None:
    order = decode(next(iter(generate(1, bad_rate=0.0, seed=4)))[0])
    item = dataclasses.replace(order.items[0], price=order.items[0].price + 1)
    changes = [
        dataclasses.replace(order, customer_id=order.customer_id + "x"),
        dataclasses.replace(order, items=(item, *order.items[1:])),
        dataclasses.replace(order, payment=dataclasses.replace(order.payment, bank="other")),
    ]
    assert len({content_hash(o) for o in [order, *changes]}) == 4
