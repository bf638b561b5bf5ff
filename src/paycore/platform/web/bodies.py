"""Request bodies, read one way on every route (the rules: ``docs/api-conventions.md``).

A body is JSON: ``Content-Type: application/json`` (or ``application/<anything>+json``), else
415 ``unsupported-media-type``; well-formed UTF-8 JSON nested at most a few hundred levels
deep, else 400 ``malformed-json``; no key twice in one object, else 422; then decoded into
the route's model, an :class:`Input`: no field it does not know, exact JSON types (no
coercion: ``"5"`` is not a number, ``5`` is not a string, ``1.0`` is not an integer), else 422
``validation-error`` naming the field.

Numbers are read exactly (a fraction is a ``Decimal``, never a float), so money (:class:`Cents`,
or :class:`CentsOrZero` where zero is an amount too) is a JSON number with at most two decimal
places, handed over as integer cents; text
(:func:`text`) is not blank, and neither starts nor ends with whitespace nor holds a control
character.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec

from paycore.platform.money import MAX_CENTS, MoneyError, cents_of_number
from paycore.platform.web.problems import Problem

T = TypeVar("T")


class Input(msgspec.Struct, forbid_unknown_fields=True):
    """The base of every request body's model: a field it does not know is refused."""


class Cents(int):
    """An amount of money in integer cents, read from a JSON number above zero with at most
    two decimal places (``19.90``; never ``"19.90"``)."""


class CentsOrZero(int):
    """An amount of money in integer cents that may be zero (a deductible, a discount), read
    from a JSON number of zero or more with at most two decimal places."""


MONEY_SCHEMA: Final[dict[str, Any]] = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": MAX_CENTS // 100,
    "multipleOf": 0.01,
    "description": "A JSON number with at most two decimal places, e.g. 19.90",
}

_CONTROL = r"\x00-\x1f\x7f-\x9f"
_SPACE = r"\x20\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# character ranges written out, not ``\s``: JSON Schema's regular expressions (ECMA 262) and
# Python's disagree on what ``\s`` holds
_EDGE = rf"[^{_CONTROL}{_SPACE}]"
_TEXT_PATTERN: Final = rf"^{_EDGE}(?:[^{_CONTROL}]*{_EDGE})?$"
_TEXT_WORDS: Final = "without control characters, and neither starting nor ending with a space"


def text(max_length: int, *, description: str = "") -> msgspec.Meta:
    """The constraints of a text field of 1 to ``max_length`` characters (see the module
    doc): ``name: Annotated[str, text(200)]``."""
    return msgspec.Meta(
        min_length=1,
        max_length=max_length,
        pattern=_TEXT_PATTERN,
        description=description or None,
    )


def read(model: type[T], body: bytes, content_type: str | None) -> T:
    """The body as ``model``, or the problem saying what is wrong with it (module doc)."""
    document = read_document(body, content_type)
    try:
        return msgspec.convert(document, model, dec_hook=_decode_custom)
    except msgspec.ValidationError as exc:
        raise invalid(str(exc)) from None


def read_document(body: bytes, content_type: str | None) -> Any:
    """The JSON document in ``body`` (fractions as ``Decimal``), checked for its media type,
    its syntax and keys given twice."""
    if not is_json(content_type):
        raise Problem(
            415,
            "unsupported-media-type",
            "The body must be JSON, sent with Content-Type: application/json.",
        )
    try:
        document = _DOCUMENT.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise Problem(400, "malformed-json", f"The body is not valid JSON: {reason}.") from None
    repeated = _repeated_key(body, document)
    if repeated is not None:
        raise field_problem([repeated], "Given twice in one object", "duplicate_key")
    return document


@functools.lru_cache(maxsize=256)
def is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names JSON (``application/json`` or ``application/*+json``,
    in UTF-8 if a charset is given). Clients send a handful of values: each is judged once."""
    if not content_type:
        return False
    media, _, parameters = content_type.partition(";")
    kind, _, subtype = media.strip().lower().partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    charset = re.search(r"charset\s*=\s*\"?([\w-]+)", parameters, re.IGNORECASE)
    return charset is None or charset.group(1).lower() in ("utf-8", "utf8")


def invalid(message: str) -> Problem:
    """msgspec's validation message (``<what> - at `$.a[0].b```) as a 422 problem."""
    what, _, where = message.partition(" - at `$")
    path = [p for p in re.split(r"[.\[\]]", where.rstrip("`")) if p]
    kind = "invalid"
    if found := _FIELD.match(what):
        path.append(found.group("name"))
        unknown = found.group("kind") == "contains unknown"
        kind, what = ("unknown_field", "Unknown field") if unknown else ("missing", "Missing")
    elif f"matching regex '{_TEXT_PATTERN}'" in what.replace("\\\\", "\\"):
        what = f"Expected text {_TEXT_WORDS}"
    return field_problem(path, what, kind)


_FIELD: Final = re.compile(
    r"^Object (?P<kind>contains unknown|missing required) field `(?P<name>.*)`$"
)


def field_problem(path: list[str], what: str, kind: str = "invalid") -> Problem:
    """The 422 problem for the body's value at ``path`` (field names and indexes)."""
    field = ".".join(path)
    return Problem(
        422,
        "validation-error",
        f"{field}: {what}" if field else what,
        errors=[{"loc": ["body", *path], "msg": what, "type": kind}],
    )


SCHEMAS: Final = "#/components/schemas/"
"""Where the OpenAPI document keeps the request models' schemas."""


def schema_components(models: list[type[Any]]) -> dict[str, Any]:
    """The JSON schemas of request models (and what they use), for the OpenAPI document's
    components, referring to each other there."""
    _, components = msgspec.json.schema_components(
        models, schema_hook=_schema_of_custom, ref_template=SCHEMAS + "{name}"
    )
    return components


# --- decoding ------------------------------------------------------------------------------

_DOCUMENT: Final = msgspec.json.Decoder(float_hook=Decimal)


def _decode_custom(kind: type, value: Any) -> Any:
    if kind is Cents or kind is CentsOrZero:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ValueError("Expected a JSON number, e.g. 19.90")
        try:
            cents = cents_of_number(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
        if kind is Cents and cents <= 0:
            raise ValueError("Expected an amount above zero")
        if cents < 0:
            raise ValueError("Expected an amount of zero or more")
        return kind(cents)
    raise NotImplementedError(kind)


def _schema_of_custom(kind: type) -> dict[str, Any]:
    if kind is Cents:
        return dict(MONEY_SCHEMA)
    if kind is CentsOrZero:
        schema = {k: v for k, v in MONEY_SCHEMA.items() if k != "exclusiveMinimum"}
        return {**schema, "minimum": 0, "description": MONEY_SCHEMA["description"] + ", or 0"}
    raise NotImplementedError(kind)


def _repeated_key(body: bytes, document: Any) -> str | None:
    """A key given twice in one object of ``body`` (whose decoding is ``document``), or None.

    Decoding keeps the last of repeated keys, so the document alone cannot tell; counting
    does, cheaply: every key in the text is followed by a colon, and the only other colons
    are inside strings. With no key repeated, the text's colons are the document's keys plus
    the colons in its strings; a repeated key makes more (its lost values' strings included).
    Only an escaped colon (``\\u003a``) spoils the count: then, or when the count differs,
    the body is read again key by key to name the key."""
    keys, colons = _count(document)
    if body.count(b":") == keys + colons and not _ESCAPED_COLON.search(body):
        return None
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen and not repeated:
                repeated.append(key)
            seen.add(key)
        return dict(items)

    json.loads(body, object_pairs_hook=pairs)
    return repeated[0] if repeated else None


_ESCAPED_COLON: Final = re.compile(rb"\\u003[aA]")


def _count(document: Any) -> tuple[int, int]:
    """Keys in every object of ``document``, and colons in its strings (keys included)."""
    keys = colons = 0
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, Mapping):
            keys += len(value)
            for key, item in value.items():
                colons += key.count(":")
                pending.append(item)
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            colons += value.count(":")
    return keys, colons
