"""Path and query parameters the contexts share, bounded so that nothing a client sends
reaches the database unchecked: an id fits a 64-bit integer, a page's offset fits too, a UUID
is a UUID (a NUL or a stray ``?`` in a text id never reaches a query). A value out of bounds
is a 422 ``validation-error`` naming the parameter, as a body's would be."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path, Query

MAX_ID: Final = 2**63 - 1
MAX_PAGE: Final = 1_000_000
UUID_PATTERN: Final = (
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

IntId = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive 64-bit integer id")]
UuidId = Annotated[str, Path(pattern=UUID_PATTERN, description="A UUID")]
Page = Annotated[int, Query(ge=0, le=MAX_PAGE, description="Page number, from 0")]
