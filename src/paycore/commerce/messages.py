"""Wire formats of the commerce context (versioned), and the BTG challenge's own format."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from paycore.commerce.domain import Order, OrderLine, merge_lines
from paycore.platform.clock import iso, parse_iso, utcnow
from paycore.platform.money import MoneyError, to_cents

ORDER_CREATED = "commerce.order-created"
CHALLENGE_QUEUE = "btg-pactual-order-created"
ORDER_CREATED_VERSION = 1
MAX_CENTS = 2**63


class BadMessage(ValueError):
    """The bytes are not a valid message of the expected format."""


def encode_order_created(order: Order) -> bytes:
    return orjson.dumps(
        {
            "type": ORDER_CREATED,
            "version": ORDER_CREATED_VERSION,
            "orderId": order.order_id,
            "customerId": order.customer_id,
            "items": [
                {"product": line.product, "quantity": line.quantity, "unitCents": line.unit_cents}
                for line in order.lines
            ],
            "totalCents": order.total_cents,
            "createdAt": iso(order.ordered_at),
        }
    )


def decode_order_created(body: bytes) -> Order:
    data = _json_object(body)
    if data.get("type") != ORDER_CREATED:
        raise BadMessage(f"expected type {ORDER_CREATED!r}, got {data.get('type')!r}")
    version = data.get("version")
    if type(version) is not int or version != ORDER_CREATED_VERSION:
        raise BadMessage(f"unsupported version {version!r}")
    lines = tuple(
        OrderLine(
            product=_text(item, "product"),
            quantity=_positive_int(item, "quantity"),
            unit_cents=_non_negative_int(item, "unitCents"),
        )
        for item in _items(data, "items")
    )
    order = Order(
        order_id=_positive_int(data, "orderId"),
        customer_id=_positive_int(data, "customerId"),
        lines=lines,
        ordered_at=_timestamp(data, "createdAt"),
    )
    if data.get("totalCents") != order.total_cents:
        raise BadMessage("totalCents does not match the sum of the items")
    return _bounded(order, "items[].unitCents")


def decode_challenge_order(body: bytes, received_at: datetime | None = None) -> Order:
    """``{"codigoPedido":1001,"codigoCliente":1,"itens":[{"produto","quantidade","preco"}]}``;
    prices are parsed as exact decimals (never floats)."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("expected a JSON object")
    lines = []
    for item in _items(data, "itens"):
        price = item.get("preco")
        if isinstance(price, bool) or not isinstance(price, int | Decimal) or price < 0:
            raise BadMessage("itens[].preco must be a non-negative number")
        try:
            cents = to_cents(price)
        except MoneyError as exc:
            raise BadMessage(f"itens[].preco: {exc}") from exc
        lines.append(OrderLine(_text(item, "produto"), _positive_int(item, "quantidade"), cents))
    return _bounded(
        Order(
            order_id=_positive_int(data, "codigoPedido"),
            customer_id=_positive_int(data, "codigoCliente"),
            lines=merge_lines(lines),
            ordered_at=received_at or utcnow(),
        ),
        "itens[].preco",
    )


def _bounded(order: Order, price_field: str) -> Order:
    """Amounts must fit a signed 64-bit integer of cents, as the database stores them."""
    if any(line.unit_cents >= MAX_CENTS for line in order.lines):
        raise BadMessage(f"{price_field} must be below 2**63 cents")
    if order.total_cents >= MAX_CENTS:
        raise BadMessage("the order total must be below 2**63 cents")
    return order


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadMessage(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("expected a JSON object")
    return data


def _items(data: dict[str, Any], field: str) -> list[dict[str, Any]]:
    items = data.get(field)
    if not isinstance(items, list) or not items:
        raise BadMessage(f"{field} must be a non-empty list")
    if not all(isinstance(i, dict) for i in items):
        raise BadMessage(f"{field} must hold objects")
    return items


def _text(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise BadMessage(f"{field} must be a non-empty string of at most 200 characters")
    return value.strip()


def _positive_int(data: dict[str, Any], field: str) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise BadMessage(f"{field} must be a positive integer")
    return value


def _non_negative_int(data: dict[str, Any], field: str) -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise BadMessage(f"{field} must be a non-negative integer")
    return value


def _timestamp(data: dict[str, Any], field: str) -> datetime:
    value = data.get(field)
    try:
        return parse_iso(str(value))
    except ValueError as exc:
        raise BadMessage(f"{field} must be an ISO 8601 timestamp") from exc
