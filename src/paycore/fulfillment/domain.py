"""Fulfillment orders (the Wildberries "L0" model): the order, its rules, its JSON.

Standard library only. An order that breaks a rule raises :class:`InvalidOrder`, whose ``kind``
is a stable code (one of :data:`DEFECT_KINDS`) and whose ``field`` is a JSON path such as
``payment.amount`` or ``items[2].track_number`` (``""`` when the problem is the body as a
whole). The rules, and the first problem found is the one reported:

1. ``not-json``: the body is not UTF-8, or not JSON (``NaN`` and ``Infinity`` are refused).
2. ``not-an-object``: the JSON value is not an object.
3. Shape: ``missing-field`` (every field is required, ``request_id`` and
   ``internal_signature`` too, even though they may be empty), ``unknown-field`` (any other
   key, at every level: a misspelt field must not silently lose data), ``wrong-type``
   (exact JSON types: an integer is a JSON integer, never ``true``, ``1.0`` or ``"1"``; a string
   is a string; ``null`` is never accepted); ``items`` holds 1 to 1000 entries
   (``out-of-range``). Steps 1 to 3 are the wire format's (``messages``: msgspec decodes the
   body into an :class:`Order` and checks them on the way, in document order); the domain's
   :func:`check_values` checks the rest on the built order:
4. ``bad-format``, same object order, fields in model order. No string may contain NUL or an
   unpaired surrogate (neither can be stored as PostgreSQL text nor encoded as UTF-8). Every
   string must hold a non-blank value, except ``payment.request_id`` and
   ``internal_signature`` (empty in the seed), ``delivery.zip`` and ``delivery.region`` (not
   every country has them) and ``items[].brand`` (unbranded goods). Besides: ``order_uid`` is
   1-64 characters of ``[A-Za-z0-9_-]``; ``locale`` is 2-5 characters (a letter, then letters,
   ``-`` or ``_``: ``en``, ``ru-RU``); ``date_created`` is an ISO 8601 date and time with a time
   zone (``2021-11-26T06:22:19Z``); ``delivery.phone`` is ``+`` and 7-15 digits;
   ``delivery.email`` is ``local@domain.tld`` without spaces, at most 254 characters;
   ``payment.currency`` is an ISO 4217 style code of 3 upper-case letters.
5. ``out-of-range``: every integer is a non-negative signed 64-bit value (``0 <= n < 2**63``:
   amounts, prices and identifiers alike); besides, ``items[].sale`` is at most 100 (a percent)
   and ``payment.payment_dt`` (unix seconds) at least 1.
6. ``inconsistent``, see below.

Inconsistencies that reject (each makes stored totals or tracking wrong, and the seed's sample,
``b563feb7b2b84b6test``, satisfies them all):

- an item whose ``track_number`` differs from the order's: items travel in the order's parcel;
- ``payment.goods_total`` different from the sum of the items' ``total_price``;
- ``payment.amount`` different from ``goods_total + delivery_cost + custom_fee``
  (1817 = 317 + 1500 + 0 in the seed).

Left unchecked, on purpose:

- ``total_price`` against ``price`` and ``sale``: the seed gives 317 for 453 at 30 % off
  (317.1), the rounding is not specified and other discounts (promo codes, loyalty) apply;
- ``payment.transaction`` against ``order_uid``: the seed's README pairs a transaction with
  another order's uid;
- ``payment.payment_dt`` against ``date_created``: the seed's payment is 12 s *before* the
  order's creation (two systems, two clocks);
- repeated ``chrt_id``, ``nm_id`` or ``rid``: the same article may be bought twice;
- duplicate JSON keys: every occurrence must be of the right type, and the last one wins (as
  with the seed's Go ``encoding/json``).

The checks are tables built once at import and precompiled regular expressions; nothing large
is allocated per call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, get_type_hints

from paycore.platform.errors import DomainError

DEFECT_KINDS: Final[tuple[str, ...]] = (
    "not-json",
    "not-an-object",
    "missing-field",
    "unknown-field",
    "wrong-type",
    "bad-format",
    "out-of-range",
    "inconsistent",
)

MAX_ITEMS: Final = 1000
INT_LIMIT: Final = 2**63  # integers must stay below it (PostgreSQL bigint)


SHAPE_KINDS: Final = frozenset(
    ("not-json", "not-an-object", "missing-field", "unknown-field", "wrong-type")
)
"""Defects of the JSON shape, which the OpenAPI document describes: answered as every other
body that breaks its schema (``validation-error``); the other kinds break a value rule of the
L0 model (``invalid-order``)."""


class InvalidOrder(DomainError):
    """An order value breaks an L0 rule (a format, a range, a sum); ``kind`` says how (a
    stable code), ``field`` the JSON path at fault. A defect of the shape is answered as a
    ``validation-error``, with the same kind and field."""

    code = "invalid-order"
    status = 422

    def __init__(self, kind: str, field: str, detail: str) -> None:
        error = {"loc": ["body", *field.split(".")] if field else ["body"], "msg": detail}
        super().__init__(
            f"{field} {detail}" if field else detail,
            kind=kind,
            field=field,
            errors=[{**error, "type": kind}],
        )
        self.kind = kind
        self.field = field
        if kind in SHAPE_KINDS:
            self.code = "validation-error"


class DuplicateOrderUid(DomainError):
    """An order with this ``order_uid`` is already stored with other content."""

    code = "duplicate-order-uid"
    status = 409

    def __init__(self, order_uid: str) -> None:
        super().__init__(f"order {order_uid} is already stored with other content")


@dataclass(frozen=True, slots=True)
class Delivery:
    name: str
    phone: str
    zip: str
    city: str
    address: str
    region: str
    email: str


@dataclass(frozen=True, slots=True)
class Payment:
    transaction: str
    request_id: str
    currency: str
    provider: str
    amount: int
    payment_dt: int
    bank: str
    delivery_cost: int
    goods_total: int
    custom_fee: int


@dataclass(frozen=True, slots=True)
class Item:
    chrt_id: int
    track_number: str
    price: int
    rid: str
    name: str
    sale: int
    size: str
    total_price: int
    nm_id: int
    brand: str
    status: int


@dataclass(frozen=True, slots=True)
class Order:
    order_uid: str
    track_number: str
    entry: str
    delivery: Delivery
    payment: Payment
    items: tuple[Item, ...]
    locale: str
    internal_signature: str
    customer_id: str
    delivery_service: str
    shardkey: str
    sm_id: int
    date_created: str
    oof_shard: str


# --- tables built once: the JSON type of every field, level by level ------------------------

_Schema = dict[str, type]

_JSON_TYPE_OF: Final[dict[object, type]] = {
    str: str,
    int: int,
    Delivery: dict,
    Payment: dict,
    tuple[Item, ...]: list,
}


def _schema(model: type) -> _Schema:
    """Field name -> exact JSON (Python) type, in model order, from the dataclass annotations."""
    return {name: _JSON_TYPE_OF[hint] for name, hint in get_type_hints(model).items()}


_ORDER_SCHEMA: Final = _schema(Order)
_DELIVERY_SCHEMA: Final = _schema(Delivery)
_PAYMENT_SCHEMA: Final = _schema(Payment)
_ITEM_SCHEMA: Final = _schema(Item)


def _preview(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


# --- formats -------------------------------------------------------------------------------

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
ORDER_UID: Final = r"[A-Za-z0-9_-]{1,64}"
"""What an order uid is made of (checked in full: ``fullmatch``)."""
_ORDER_UID: Final = re.compile(ORDER_UID)
_LOCALE: Final = re.compile(r"[A-Za-z][A-Za-z_-]{1,4}")
_PHONE: Final = re.compile(r"\+[0-9]{7,15}")
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")


def _is_email(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.fullmatch(text) is not None


def _is_zoned_datetime(text: str) -> bool:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return False
    return moment.tzinfo is not None


# (field, must hold a non-blank value, extra check or None, what the check expects)
_FormatRule = tuple[str, bool, Callable[[str], object] | None, str]

# keyed by field name alone: none of these names occurs at two levels
_CHECKS: Final[dict[str, tuple[Callable[[str], object], str]]] = {
    "order_uid": (_ORDER_UID.fullmatch, "1 to 64 characters among A-Z, a-z, 0-9, '_' and '-'"),
    "locale": (_LOCALE.fullmatch, "2 to 5 characters such as 'en' or 'ru-RU'"),
    "date_created": (
        _is_zoned_datetime,
        "an ISO 8601 date and time with a time zone such as '2021-11-26T06:22:19Z'",
    ),
    "phone": (_PHONE.fullmatch, "'+' followed by 7 to 15 digits"),
    "email": (_is_email, "an e-mail address such as 'name@example.com'"),
    "currency": (_CURRENCY.fullmatch, "an ISO 4217 code of 3 upper-case letters such as 'RUB'"),
}


def _format_rules(schema: _Schema, may_be_empty: frozenset[str]) -> tuple[_FormatRule, ...]:
    rules: list[_FormatRule] = []
    for name, kind in schema.items():
        if kind is str:
            check, expected = _CHECKS.get(name, (None, ""))
            rules.append((name, name not in may_be_empty, check, expected))
    return tuple(rules)


_ORDER_FORMATS: Final = _format_rules(_ORDER_SCHEMA, frozenset({"internal_signature"}))
_DELIVERY_FORMATS: Final = _format_rules(_DELIVERY_SCHEMA, frozenset({"zip", "region"}))
_PAYMENT_FORMATS: Final = _format_rules(_PAYMENT_SCHEMA, frozenset({"request_id"}))
_ITEM_FORMATS: Final = _format_rules(_ITEM_SCHEMA, frozenset({"brand"}))

# --- ranges --------------------------------------------------------------------------------

_RangeRule = tuple[str, int, int]  # (field, lowest, highest) allowed


def _range_rules(schema: _Schema, special: dict[str, tuple[int, int]]) -> tuple[_RangeRule, ...]:
    ints = [name for name, kind in schema.items() if kind is int]
    return tuple((name, *special.get(name, (0, INT_LIMIT - 1))) for name in ints)


_ORDER_RANGES: Final = _range_rules(_ORDER_SCHEMA, {})
_PAYMENT_RANGES: Final = _range_rules(_PAYMENT_SCHEMA, {"payment_dt": (1, INT_LIMIT - 1)})
_ITEM_RANGES: Final = _range_rules(_ITEM_SCHEMA, {"sale": (0, 100)})


# --- the checks ----------------------------------------------------------------------------


def _check_strings(obj: object, rules: tuple[_FormatRule, ...], prefix: str) -> None:
    for name, required, check, expected in rules:
        value: str = getattr(obj, name)
        if "\x00" in value or (not value.isascii() and _SURROGATE.search(value)):
            detail = "contains a NUL character or an unpaired surrogate, which cannot be stored"
            raise InvalidOrder("bad-format", prefix + name, detail)
        if not value or value.isspace():
            if required:
                raise InvalidOrder("bad-format", prefix + name, "must not be empty")
        elif check is not None and not check(value):
            detail = f"must be {expected}, not {_preview(value)}"
            raise InvalidOrder("bad-format", prefix + name, detail)


def _check_all_formats(order: Order) -> None:
    _check_strings(order, _ORDER_FORMATS, "")
    _check_strings(order.delivery, _DELIVERY_FORMATS, "delivery.")
    _check_strings(order.payment, _PAYMENT_FORMATS, "payment.")
    for index, item in enumerate(order.items):
        _check_strings(item, _ITEM_FORMATS, f"items[{index}].")


def _check_ints(obj: object, rules: tuple[_RangeRule, ...], prefix: str) -> None:
    for name, lowest, highest in rules:
        value: int = getattr(obj, name)
        if value < lowest:
            limit = f"at least {lowest}"
        elif value > highest:
            limit = "below 2**63" if highest == INT_LIMIT - 1 else f"at most {highest}"
        else:
            continue
        raise InvalidOrder("out-of-range", prefix + name, f"must be {limit}, not {value}")


def _check_all_ranges(order: Order) -> None:
    _check_ints(order, _ORDER_RANGES, "")
    _check_ints(order.payment, _PAYMENT_RANGES, "payment.")
    for index, item in enumerate(order.items):
        _check_ints(item, _ITEM_RANGES, f"items[{index}].")


def _check_consistency(order: Order) -> None:
    track, items, payment = order.track_number, order.items, order.payment
    for index, item in enumerate(items):
        if item.track_number != track:
            detail = f"must equal the order's track_number {_preview(track)}"
            raise InvalidOrder("inconsistent", f"items[{index}].track_number", detail)
    goods, goods_total = sum(item.total_price for item in items), payment.goods_total
    if goods_total != goods:
        detail = f"must equal the sum of the items' total_price, {goods}, not {goods_total}"
        raise InvalidOrder("inconsistent", "payment.goods_total", detail)
    due, amount = goods_total + payment.delivery_cost + payment.custom_fee, payment.amount
    if amount != due:
        detail = f"must equal goods_total + delivery_cost + custom_fee, {due}, not {amount}"
        raise InvalidOrder("inconsistent", "payment.amount", detail)


def check_values(order: Order) -> None:
    """Steps 4 to 6 of the module docstring (formats, ranges, consistency) on an order whose
    shape is right (steps 1 to 3, the decoder's). Raises :class:`InvalidOrder`."""
    _check_all_formats(order)
    _check_all_ranges(order)
    _check_consistency(order)


# --- public API ----------------------------------------------------------------------------


def _plain(obj: object, schema: _Schema) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in schema}


def order_to_dict(order: Order) -> dict[str, Any]:
    """The order in its JSON shape (field order of the model)."""
    data = _plain(order, _ORDER_SCHEMA)
    data["delivery"] = _plain(order.delivery, _DELIVERY_SCHEMA)
    data["payment"] = _plain(order.payment, _PAYMENT_SCHEMA)
    data["items"] = [_plain(item, _ITEM_SCHEMA) for item in order.items]
    return data
