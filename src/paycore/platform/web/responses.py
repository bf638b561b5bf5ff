"""JSON responses with exact money: ``Decimal`` values are written as the JSON numbers they are
(``110.00``), never through a float; response models (pydantic) are rendered the same way."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, WithJsonSchema
from starlette.responses import JSONResponse as StarletteJSONResponse

Money = Annotated[
    Decimal,
    WithJsonSchema(
        {"type": "number", "description": "An amount, written with two decimals: 19.90"}
    ),
]
"""An amount of money in an answer's model: a JSON number (``dumps`` writes a ``Decimal`` as
one; the framework's schema would say a string)."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    if isinstance(value, BaseModel):
        return value.model_dump()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(content: Any) -> bytes:
    """orjson, with Decimals written as exact JSON numbers and models as their fields."""
    return orjson.dumps(content, default=_default)


class JSONResponse(StarletteJSONResponse):
    """A JSON response rendered by ``dumps``. (A subclass of the framework's own, so that the
    OpenAPI document shows each route's response model.)"""

    def render(self, content: Any) -> bytes:
        return dumps(content)
