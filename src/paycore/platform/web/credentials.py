"""The credentials a route may ask for, as the OpenAPI document declares them (a route lists
those it takes, any one of which will do): the platform's own two here, a context's next to its
routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Credential:
    """A security scheme of the document: its name there and its OpenAPI definition."""

    name: str
    scheme: dict[str, Any] = field(hash=False, compare=False)


ADMIN_TOKEN = Credential(
    "adminToken",
    {"type": "http", "scheme": "bearer", "description": "The operator's PAYCORE_ADMIN_TOKEN"},
)
SERVICE_TOKEN = Credential(
    "serviceToken",
    {"type": "http", "scheme": "bearer", "description": "PAYCORE_SERVICE_TOKEN, between services"},
)
