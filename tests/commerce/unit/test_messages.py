"""Wire formats: our versioned order-created event and the BTG challenge's own message."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from paycore.commerce.domain import Order, OrderLine
from paycore.commerce.messages import (
    ORDER_CREATED,
    ORDER_CREATED_VERSION,
    BadMessage,
    decode_challenge_order,
    decode_order_created,
    encode_order_created,
)

SPEC_SAMPLE = (
    '{"codigoPedido":1001,"codigoCliente":1,"itens":[{"produto":"lápis","quantidade":100,'
    '"preco":1.10},{"produto":"caderno","quantidade":10,"preco":1.00}]}'
).encode()

AT = datetime(2025, 7, 15, 12, 34, 56, 789_000, tzinfo=UTC)


def _order() -> Order:
    return Order(
        order_id=42,
        customer_id=7,
        lines=(OrderLine("pen", 3, 150), OrderLine("lápis", 100, 110)),
        ordered_at=AT,
    )


# --- our event -------------------------------------------------------------------------------


def test_order_created_round_trip() -> None:
    order = _order()
    assert decode_order_created(encode_order_created(order)) == order


def test_order_created_wire_shape() -> None:
    data = orjson.loads(encode_order_created(_order()))
    assert data == {
        "type": ORDER_CREATED,
        "version": ORDER_CREATED_VERSION,
        "orderId": 42,
        "customerId": 7,
        "items": [
            {"product": "pen", "quantity": 3, "unitCents": 150},
            {"product": "lápis", "quantity": 100, "unitCents": 110},
        ],
        "totalCents": 11_450,
        "createdAt": "2025-07-15T12:34:56.789Z",
    }


def _event(**changes: Any) -> bytes:
    data = orjson.loads(encode_order_created(_order()))
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps(data)


_DROP = object()


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (_event(version=2), "version"),
        (_event(version="1"), "version"),
        (_event(version=_DROP), "version"),
        (_event(totalCents=11_451), "totalCents"),
        (_event(totalCents=_DROP), "totalCents"),
        (_event(items=[]), "items"),
        (_event(items=_DROP), "items"),
        (_event(items=[1]), "items"),
        (_event(items=[{"product": "pen", "quantity": 0, "unitCents": 1}]), "quantity"),
        (_event(items=[{"product": "pen", "quantity": "3", "unitCents": 1}]), "quantity"),
        (_event(items=[{"product": "pen", "quantity": 1, "unitCents": -1}]), "unitCents"),
        (_event(items=[{"product": "pen", "quantity": 1, "unitCents": 1.5}]), "unitCents"),
        (_event(items=[{"product": " ", "quantity": 1, "unitCents": 1}]), "product"),
        (_event(orderId=0), "orderId"),
        (_event(orderId="42"), "orderId"),
        (_event(customerId=_DROP), "customerId"),
        (_event(createdAt="yesterday"), "createdAt"),
        (_event(createdAt=_DROP), "createdAt"),
    ],
)
def test_order_created_refuses_bad_messages(body: bytes, mentions: str) -> None:
    with pytest.raises(BadMessage, match=mentions):
        decode_order_created(body)


def test_order_created_refuses_totals_beyond_64_bit_cents() -> None:
    # every field is a valid int on its own, but the total does not fit the BigInteger columns
    body = json.dumps(
        {
            "type": ORDER_CREATED,
            "version": 1,
            "orderId": 1,
            "customerId": 1,
            "items": [{"product": "x", "quantity": 4, "unitCents": 2**62}],
            "totalCents": 2**64,
            "createdAt": "2025-07-15T12:00:00.000Z",
        }
    ).encode()  # orjson refuses integers this large; the stdlib writes them
    with pytest.raises(BadMessage):
        decode_order_created(body)


# --- the challenge's format --------------------------------------------------------------------


def test_challenge_sample_from_the_spec() -> None:
    order = decode_challenge_order(SPEC_SAMPLE, received_at=AT)
    assert order.order_id == 1001
    assert order.customer_id == 1
    assert order.lines == (OrderLine("lápis", 100, 110), OrderLine("caderno", 10, 100))
    assert order.total_cents == 100 * 110 + 10 * 100 == 12_000
    assert type(order.total_cents) is int
    assert order.ordered_at == AT


def test_challenge_prices_are_exact_decimals_not_floats() -> None:
    # 0.29 * 100 in floats is 28.999999999999996
    body = (
        b'{"codigoPedido":1,"codigoCliente":1,'
        b'"itens":[{"produto":"a","quantidade":3,"preco":0.29}]}'
    )
    order = decode_challenge_order(body)
    assert order.lines == (OrderLine("a", 3, 29),)
    assert order.total_cents == 87


def test_challenge_integer_price_and_repeated_lines_merge() -> None:
    body = json.dumps(
        {
            "codigoPedido": 5,
            "codigoCliente": 2,
            "itens": [
                {"produto": "a", "quantidade": 1, "preco": 2},
                {"produto": "a", "quantidade": 4, "preco": 2},
                {"produto": "a", "quantidade": 1, "preco": 3},
            ],
        }
    ).encode()
    order = decode_challenge_order(body)
    assert sorted(order.lines) == [OrderLine("a", 1, 300), OrderLine("a", 5, 200)]
    assert order.total_cents == 1_300


def test_challenge_without_received_at_is_stamped_now_in_utc() -> None:
    before = datetime.now(UTC)
    order = decode_challenge_order(SPEC_SAMPLE)
    assert order.ordered_at.utcoffset() is not None
    assert order.ordered_at >= before


def _sample(mutate: Callable[[dict[str, Any]], None]) -> bytes:
    data = json.loads(SPEC_SAMPLE)
    mutate(data)
    return json.dumps(data).encode()


def _item(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["itens"][0][field] = value

    return mutate


def _raw_item(field: str, raw: str) -> bytes:
    """The sample with one item field replaced by raw JSON text (e.g. a 3-decimal number)."""
    text = SPEC_SAMPLE.decode()
    old = {"quantidade": '"quantidade":100', "preco": '"preco":1.10'}[field]
    return text.replace(old, f'"{field}":{raw}', 1).encode()


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[field] = value

    return mutate


def _drop(field: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[field]

    return mutate


def _drop_item(field: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data["itens"][0][field]

    return mutate


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"{}", "itens"),
        (_sample(_drop("itens")), "itens"),
        (_sample(_drop("codigoPedido")), "codigoPedido"),
        (_sample(_drop("codigoCliente")), "codigoCliente"),
        (_sample(_drop_item("produto")), "produto"),
        (_sample(_drop_item("quantidade")), "quantidade"),
        (_sample(_drop_item("preco")), "preco"),
        (_sample(_set("itens", [])), "itens"),
        (_sample(_set("itens", {"produto": "a"})), "itens"),
        (_sample(_set("itens", [1])), "itens"),
        (_sample(_item("quantidade", 0)), "quantidade"),
        (_sample(_item("quantidade", -1)), "quantidade"),
        (_sample(_item("quantidade", "10")), "quantidade"),
        (_sample(_item("quantidade", 1.5)), "quantidade"),
        (_sample(_item("quantidade", True)), "quantidade"),
        (_sample(_item("quantidade", None)), "quantidade"),
        (_raw_item("quantidade", "1e2"), "quantidade"),
        (_sample(_item("preco", -1.0)), "preco"),
        (_sample(_item("preco", -1)), "preco"),
        (_sample(_item("preco", "abc")), "preco"),
        (_sample(_item("preco", "1.10")), "preco"),
        (_sample(_item("preco", True)), "preco"),
        (_sample(_item("preco", None)), "preco"),
        (_raw_item("preco", "1.005"), "preco"),
        (_raw_item("preco", "NaN"), "preco"),
        (_raw_item("preco", "Infinity"), "preco"),
        (_sample(_item("produto", "")), "produto"),
        (_sample(_item("produto", "   ")), "produto"),
        (_sample(_item("produto", 5)), "produto"),
        (_sample(_set("codigoPedido", 0)), "codigoPedido"),
        (_sample(_set("codigoPedido", -1001)), "codigoPedido"),
        (_sample(_set("codigoPedido", "1001")), "codigoPedido"),
        (_sample(_set("codigoPedido", 1001.0)), "codigoPedido"),
        (_sample(_set("codigoCliente", 0)), "codigoCliente"),
        (_sample(_set("codigoCliente", "1")), "codigoCliente"),
    ],
)
def test_challenge_refuses_bad_messages(body: bytes, mentions: str) -> None:
    with pytest.raises(BadMessage, match=mentions):
        decode_challenge_order(body)


def test_challenge_refuses_prices_beyond_64_bit_cents() -> None:
    # 1E+30 is a valid JSON number, but no BigInteger column can hold its cents: a clear
    # BadMessage (dead letter at once), not a storage error retried as if it were transient
    with pytest.raises(BadMessage, match="preco"):
        decode_challenge_order(_raw_item("preco", "1E+30"))
