"""Commerce rules: order lines, prices frozen on the order, totals in integer cents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from paycore.platform.errors import DomainError

ARCHIVE_MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
"""An archived month, ``2026-11``."""
ARCHIVE_FILE = r"^(orders\.jsonl\.gz|messages\.jsonl\.gz|report\.json)$"
"""The files of an archived month."""


class CommerceError(DomainError):
    """A rule of the commerce context was broken."""

    code = "commerce-error"


class Conflict(CommerceError):
    """A customer's e-mail or username, or a product's name, is taken."""

    code = "conflict"
    status = 409


class NotFound(CommerceError):
    """The customer, product or order named is unknown."""

    code = "not-found"
    status = 404


class InvalidValue(CommerceError):
    """A blank name, or a value that is not greater than 0."""

    code = "invalid-value"


class InvalidEmail(CommerceError):
    """The e-mail address of a new customer is not one (checked in full: the domain and all)."""

    code = "invalid-email"

    def __init__(self, detail: str) -> None:
        super().__init__(f"email: {detail}", field="email")


class UnknownProducts(CommerceError):
    """An ordered product does not exist."""

    code = "unknown-product"

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        super().__init__(f"unknown product(s): {', '.join(self.names)}")


class InvalidQuantity(CommerceError):
    """A quantity that is not greater than 0."""

    code = "invalid-quantity"


class EmptyOrder(CommerceError):
    """An order without products."""

    code = "empty-order"


@dataclass(frozen=True, slots=True)
class Customer:
    id: int
    email: str
    username: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    value_cents: int
    created_at: datetime


@dataclass(frozen=True, slots=True, order=True)
class OrderLine:
    product: str
    quantity: int
    unit_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_cents


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the analytics side knows it (from our events or the challenge's format)."""

    order_id: int
    customer_id: int
    lines: tuple[OrderLine, ...]
    ordered_at: datetime

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def merge_requested(items: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantities by product name, repeated names merged; every quantity must be > 0."""
    merged: dict[str, int] = {}
    for name, quantity in items:
        if quantity <= 0:
            raise InvalidQuantity(f"quantity of {name!r} must be greater than 0")
        merged[name] = merged.get(name, 0) + quantity
    if not merged:
        raise EmptyOrder("an order needs at least one product")
    return merged


def price_lines(requested: Mapping[str, int], prices: Mapping[str, int]) -> tuple[OrderLine, ...]:
    """Freeze today's unit price on each line; every product must exist."""
    missing = set(requested) - set(prices)
    if missing:
        raise UnknownProducts(missing)
    return tuple(OrderLine(name, qty, prices[name]) for name, qty in requested.items())


def merge_lines(lines: Iterable[OrderLine]) -> tuple[OrderLine, ...]:
    """Lines of the same product and price merged (the challenge format may repeat them)."""
    merged: dict[tuple[str, int], int] = {}
    for line in lines:
        merged[(line.product, line.unit_cents)] = (
            merged.get((line.product, line.unit_cents), 0) + line.quantity
        )
    return tuple(OrderLine(p, q, c) for (p, c), q in merged.items())


def normalize_email(email: str) -> str:
    return email.strip().lower()
