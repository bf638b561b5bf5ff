"""The wire format of an order (the ``orders`` topic, ``POST /orders``): UTF-8 JSON in the L0
model, decoded by msgspec straight into the domain's order, which then checks its values.

msgspec checks steps 1 to 3 of the domain's rules (see ``domain``) in C, in one pass of the
body in document order: JSON (``NaN``, ``Infinity``, bad UTF-8 refused), an object at the top,
every field present, no other key at any level, exact JSON types (an integer is never ``true``,
``1.0`` or ``"1"``; ``null`` is never accepted), 1 to 1000 items. Its refusals are translated to
the domain's ``InvalidOrder`` (kind, JSON path, words); the first problem met in the body is the
one reported. The domain's ``check_values`` does the rest (formats, ranges, consistency).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, get_type_hints

import msgspec
from msgspec import Meta

from paycore.fulfillment.domain import MAX_ITEMS, InvalidOrder, Item, Order, check_values


def _shape(model: type) -> Any:
    """The exact JSON shape of a domain model as a msgspec Struct: every field required, no
    other key, exact JSON types, items 1 to 1000."""
    fields: list[tuple[str, Any]] = []
    for name, hint in get_type_hints(model).items():
        if hint in (str, int):
            fields.append((name, hint))
        elif hint == tuple[Item, ...]:
            item: Any = _shape(Item)
            fields.append((name, Annotated[list[item], Meta(min_length=1, max_length=MAX_ITEMS)]))
        else:
            fields.append((name, _shape(hint)))
    return msgspec.defstruct(f"L0{model.__name__}", fields, forbid_unknown_fields=True)


# Two passes in C: the first refuses unknown keys (which decoding into dataclasses ignores),
# the second builds the frozen domain dataclasses.
SHAPE: Final = _shape(Order)
"""The order's JSON shape as a msgspec Struct (the OpenAPI document shows its schema)."""
_SHAPE: Final = msgspec.json.Decoder(SHAPE)
_ORDER: Final = msgspec.json.Decoder(Order)

_JSON_TYPES: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number with a fraction or an exponent",
    "bool": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_WHERE: Final = re.compile(r"^(?P<what>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$")
_MISSING: Final = re.compile(r"^Object missing required field `(?P<name>[^`]*)`$")
_UNKNOWN: Final = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")
_TYPE: Final = re.compile(r"^Expected `(?P<expected>[^`]*)`, got `(?P<got>[^`]*)`$")
_LENGTH: Final = re.compile(r"^Expected `array` of length [<>]= \d+$")


def decode(body: bytes) -> Order:
    """The order in ``body``; ``InvalidOrder`` (its kind, the JSON path at fault) otherwise."""
    try:
        _SHAPE.decode(body)
        order = _ORDER.decode(body)
    except msgspec.ValidationError as exc:
        raise refusal(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidOrder("not-json", "", f"the body is not valid JSON ({exc})") from None
    check_values(order)
    return order


def refusal(message: str) -> InvalidOrder:
    """msgspec's validation message as the domain's refusal."""
    where = _WHERE.match(message)
    assert where is not None  # the pattern matches any text
    what, path = where.group("what"), where.group("path") or ""
    prefix = f"{path}." if path else ""
    if found := _MISSING.match(what):
        return InvalidOrder("missing-field", prefix + found.group("name"), "is missing")
    if found := _UNKNOWN.match(what):
        name = prefix + found.group("name")
        return InvalidOrder("unknown-field", name, "is not a field of an order")
    if not path:  # the top value is something else than an object
        got = found.group("got") if (found := _TYPE.match(what)) else "a number out of range"
        detail = f"the order must be a JSON object, not {_JSON_TYPES.get(got, got)}"
        return InvalidOrder("not-an-object", "", detail)
    if found := _TYPE.match(what):
        expected, got = (_JSON_TYPES.get(t, t) for t in found.group("expected", "got"))
        return InvalidOrder("wrong-type", path, f"must be {expected}, not {got}")
    if _LENGTH.match(what):
        detail = f"must hold between 1 and {MAX_ITEMS} items"
        return InvalidOrder("out-of-range", path, detail)
    if what == "Integer value out of range":
        return InvalidOrder("out-of-range", path, "must be below 2**63")
    if what == "Number out of range":  # a float too large for a double
        detail = f"must be {_JSON_TYPES['int']}, not {_JSON_TYPES['float']}"
        return InvalidOrder("wrong-type", path, detail)
    return InvalidOrder("wrong-type", path, what)  # any other refusal of the shape
