"""What banking's chaos tests and benchmark share: its settings, valid CPFs, and customers,
accounts and deposits made through the HTTP API as a client would; amounts are integer cents
here and exact JSON numbers on the wire."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from procs import SECRETS

from paycore.banking.domain import cpf_check_digits
from paycore.platform.money import json_number

ADMIN_TOKEN = "banking-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def banking_settings(**extra: Any) -> dict[str, Any]:
    """The ``PAYCORE_*`` settings (without the prefix) of a banking deployment under test."""
    return {**SECRETS, "admin_token": ADMIN_TOKEN, **extra}


def cpf(n: int) -> str:
    """The n-th of a series of valid CPFs (11 digits), each different."""
    base = f"{100_000_000 + n:09d}"
    return base + cpf_check_digits(base)


def as_customer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}


def body(**fields: Any) -> bytes:
    """A JSON body; ``amount``, given in integer cents, is written as an exact number with two
    decimals (``12.30``)."""
    if "amount" in fields:
        fields["amount"] = json_number(fields["amount"])
    return orjson.dumps(fields)


def sign_up(http: httpx.Client, n: int) -> tuple[str, str]:
    """Customer ``n`` (named and with a CPF of their own): their id and secret."""
    answer = http.post(
        "/banking/customers",
        content=body(name=f"Customer {n}", cpf=cpf(n)),
        headers={"Content-Type": "application/json"},
    )
    answer.raise_for_status()
    created = answer.json()
    return created["id"], created["secret"]


def open_account(http: httpx.Client, secret: str) -> str:
    answer = http.post("/banking/accounts", headers=as_customer(secret))
    answer.raise_for_status()
    account_id: str = answer.json()["id"]
    return account_id


def deposit(http: httpx.Client, secret: str, account_id: str, cents: int) -> None:
    answer = http.post(
        f"/banking/accounts/{account_id}/deposits",
        content=body(amount=cents),
        headers=as_customer(secret),
    )
    answer.raise_for_status()
