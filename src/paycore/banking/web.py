"""What banking's routes share: their dependencies on the app's state, and the two callers
they know: a customer (their secret) and the operator (the admin token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.datastructures import State

from paycore.banking import service
from paycore.banking.domain import Unauthorized
from paycore.banking.ledger.cache import Accounts
from paycore.platform.cards import Hasher
from paycore.platform.clock import as_utc
from paycore.platform.persistence.batch import GroupWriter
from paycore.platform.persistence.db import AnyRow
from paycore.platform.persistence.uow import Database
from paycore.platform.web.admin import ADMIN_ERRORS, require_admin
from paycore.platform.web.credentials import ADMIN_TOKEN, Credential
from paycore.platform.web.routes import from_state, on_state

CUSTOMER_SECRET = Credential(
    "customerSecret",
    {
        "type": "http",
        "scheme": "bearer",
        "description": "The customer's secret (bk_…), shown once when they sign up",
    },
)


@dataclass(frozen=True, slots=True)
class BankingApi:
    """What banking's routes need, kept on the app's state by ``processes.mount_api``."""

    db: Database
    hasher: Hasher
    admin_token: str
    cash_id: str
    requests: GroupWriter[service.Requested, service.Requested]
    payers: service.Payers = field(init=False)  # on a transfer request's hot path
    known: Accounts = field(default_factory=Accounts)  # the batch endpoint's (ADR 0019)

    def __post_init__(self) -> None:
        payers = service.Payers(service.payer_lookups(self.db.engine))
        object.__setattr__(self, "payers", payers)  # frozen


Api = Annotated[BankingApi, on_state("banking", BankingApi)]


def of(state: State) -> BankingApi:
    """Banking's dependencies, for a route of the fast lane."""
    return from_state(state, "banking", BankingApi)


async def _customer(request: Request, api: Api) -> AnyRow:
    return await service.authenticate(api.db, api.hasher, request.headers.get("authorization"))


Customer = Annotated[AnyRow, Depends(_customer)]
AS_CUSTOMER = {"security": (CUSTOMER_SECRET,)}
CUSTOMER_ERRORS = (Unauthorized,)


async def _operator(request: Request, api: Api) -> None:
    require_admin(api.admin_token, request.headers.get("authorization"))


ADMIN = {"dependencies": [Depends(_operator)], "security": (ADMIN_TOKEN,)}
OPERATOR_ERRORS = ADMIN_ERRORS


At = Annotated[
    datetime | None,
    Query(description="An instant, ISO 8601 (without an offset: UTC); omitted: now"),
]


@dataclass(frozen=True, slots=True)
class Window:
    """Which entries of a statement: ``?from`` and ``?to`` (UTC unless an offset is given),
    after ``?cursor`` (the last ``seq`` of the page before), ``?limit`` of them."""

    since: datetime | None
    until: datetime | None
    cursor: int | None
    limit: int


async def _window(
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Window:
    return Window(
        None if since is None else as_utc(since),
        None if until is None else as_utc(until),
        cursor,
        limit,
    )


StatementWindow = Annotated[Window, Depends(_window)]
