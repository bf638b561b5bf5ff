"""Bad input on banking's routes, customers' and the operator's, over HTTP (the API as ``paycore
api --context banking`` builds it, SQLite, a real NATS): each case answers a 4xx problem with
its stable code (or, in a batch, a result naming the refusal), never a 500, and moves no money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from banking_kit import ADMIN, ADMIN_TOKEN, cpf, deposit, open_account, serving, sign_up, tid
from servers import Server
from web_kit import migrated_settings

from paycore.platform.settings import Settings

PROBLEM = "application/problem+json"
UNKNOWN = "00000000-0000-7000-8000-0000000000ff"


@pytest.fixture
def settings(tmp_path: Path, nats_server: Server) -> Settings:
    return migrated_settings(tmp_path, nats_server.url, admin_token=ADMIN_TOKEN)


@dataclass
class Case:
    what: str
    method: str
    path: str
    status: int
    code: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


async def test_bad_input_gets_a_clear_4xx_and_moves_nothing(settings: Settings) -> None:
    async with serving(settings, worker=False) as http:
        ana, bia = await sign_up(http, "Ana Lima", 11), await sign_up(http, "Bia Souza", 12)
        a, b = await open_account(http, ana), await open_account(http, bia)
        closed = await open_account(http, ana)
        assert (await http.delete(f"/banking/accounts/{closed}", headers=ana.auth)).is_success
        await deposit(http, ana, a, 50)
        deposited, sent = tid(), tid()
        assert (
            await http.post(
                f"/banking/accounts/{a}/deposits",
                json={"amount": 1.5, "id": deposited},
                headers=ana.auth,
            )
        ).status_code == 201
        transfer = {"from_account_id": a, "to_account_id": b, "amount": 5, "id": sent}
        accepted = await http.post("/banking/transfers", json=transfer, headers=ana.auth)
        assert accepted.status_code == 202, accepted.text
        before = (await http.get(f"/banking/accounts/{a}", headers=ana.auth)).json()

        cases = [
            # signing up
            Case("a CPF of another shape", "POST", "/banking/customers", 422, "validation-error",
                 {"name": "Caio", "cpf": "123.456.789"}),
            Case("a CPF with letters", "POST", "/banking/customers", 422, "validation-error",
                 {"name": "Caio", "cpf": "123.456.78a-09"}),
            Case("a CPF as a number", "POST", "/banking/customers", 422, "validation-error",
                 {"name": "Caio", "cpf": 12345678909}),
            Case("a CPF's check digits wrong", "POST", "/banking/customers", 422, "invalid-cpf",
                 {"name": "Caio", "cpf": "123.456.789-00"}),
            Case("a CPF of one digit", "POST", "/banking/customers", 422, "invalid-cpf",
                 {"name": "Caio", "cpf": "111.111.111-11"}),
            Case("a CPF signed up already", "POST", "/banking/customers", 409, "customer-exists",
                 {"name": "Ana Maria", "cpf": cpf(11).replace(".", "").replace("-", "")}),
            Case("no name", "POST", "/banking/customers", 422, "validation-error",
                 {"cpf": cpf(13)}),
            Case("a name with a leading space", "POST", "/banking/customers", 422,
                 "validation-error", {"name": " Caio", "cpf": cpf(13)}),
            # amounts
            *(
                Case(f"amount {amount!r}", "POST", f"/banking/accounts/{a}/deposits", 422,
                     "validation-error", {"amount": amount}, ana.auth)
                for amount in (-1, 0, 0.0, 1.234, "10.00", True, None, 1e20, 10**14)
            ),
            *(
                Case(f"transfer amount {amount!r}", "POST", "/banking/transfers", 422,
                     "validation-error", {**transfer, "id": tid(), "amount": amount}, ana.auth)
                for amount in (-5, 0, 0.001, 2.505, "5")
            ),
            Case("a withdrawal beyond the balance", "POST", f"/banking/accounts/{a}/withdrawals",
                 422, "insufficient-funds", {"amount": 1_000}, ana.auth),
            Case("another currency", "POST", f"/banking/accounts/{a}/deposits", 422,
                 "currency-mismatch", {"amount": 1, "currency": "USD"}, ana.auth),
            Case("a currency that is none", "POST", f"/banking/accounts/{a}/deposits", 422,
                 "validation-error", {"amount": 1, "currency": "reais"}, ana.auth),
            Case("a transfer in another currency", "POST", "/banking/transfers", 422,
                 "currency-mismatch", {**transfer, "id": tid(), "currency": "EUR"}, ana.auth),
            Case("a transfer to the same account", "POST", "/banking/transfers", 422,
                 "accounts-must-be-different", {**transfer, "id": tid(), "to_account_id": a},
                 ana.auth),
            Case("a transfer missing its destination", "POST", "/banking/transfers", 422,
                 "validation-error", {"from_account_id": a, "amount": 5}, ana.auth),
            Case("a transfer with a bad body and a made-up secret", "POST", "/banking/transfers",
                 401, "unauthorized", {"amount": "lots"},
                 {"Authorization": "Bearer bk_not-a-customer-secret"}),
            # accounts: unknown, another's, closed
            Case("a deposit into an unknown account", "POST",
                 f"/banking/accounts/{UNKNOWN}/deposits", 404, "not-found", {"amount": 1},
                 ana.auth),
            Case("a deposit into another's account", "POST", f"/banking/accounts/{b}/deposits",
                 404, "not-found", {"amount": 1}, ana.auth),
            Case("a withdrawal from another's account", "POST",
                 f"/banking/accounts/{a}/withdrawals", 404, "not-found", {"amount": 1}, bia.auth),
            Case("a deposit into a closed account", "POST", f"/banking/accounts/{closed}/deposits",
                 422, "account-closed", {"amount": 1}, ana.auth),
            Case("another's account read", "GET", f"/banking/accounts/{a}", 404, "not-found",
                 headers=bia.auth),
            Case("another's statement", "GET", f"/banking/accounts/{a}/statement", 404,
                 "not-found", headers=bia.auth),
            Case("another's balance", "GET", f"/banking/accounts/{a}/balance", 404, "not-found",
                 headers=bia.auth),
            Case("another's account closed", "DELETE", f"/banking/accounts/{a}", 404, "not-found",
                 headers=bia.auth),
            Case("an account with money closed", "DELETE", f"/banking/accounts/{a}", 409,
                 "account-not-empty", headers=ana.auth),
            Case("a closed account closed", "DELETE", f"/banking/accounts/{closed}", 409,
                 "account-closed", headers=ana.auth),
            Case("a transfer from another's account", "POST", "/banking/transfers", 404,
                 "not-found", {**transfer, "id": tid(), "from_account_id": b}, ana.auth),
            Case("a transfer from an unknown account", "POST", "/banking/transfers", 404,
                 "not-found", {**transfer, "id": tid(), "from_account_id": UNKNOWN}, ana.auth),
            Case("another's transfer", "GET", f"/banking/transfers/{sent}", 404, "not-found",
                 headers=bia.auth),
            Case("an account id that is no id", "GET", "/banking/accounts/abc", 422,
                 "validation-error", headers=ana.auth),
            Case("a statement page too long", "GET", f"/banking/accounts/{a}/statement", 422,
                 "validation-error", headers=ana.auth, params={"limit": "501"}),
            Case("a statement cursor below zero", "GET", f"/banking/accounts/{a}/statement", 422,
                 "validation-error", headers=ana.auth, params={"cursor": "-1"}),
            Case("a balance at no time", "GET", f"/banking/accounts/{a}/balance", 422,
                 "validation-error", headers=ana.auth, params={"at": "yesterday"}),
            # replays with other fields
            Case("a deposit's id with another amount", "POST", f"/banking/accounts/{a}/deposits",
                 409, "transfer-id-reused", {"amount": 2, "id": deposited}, ana.auth),
            Case("a deposit's id for a withdrawal", "POST", f"/banking/accounts/{a}/withdrawals",
                 409, "transfer-id-reused", {"amount": 1.5, "id": deposited}, ana.auth),
            Case("a transfer's id with another amount", "POST", "/banking/transfers", 409,
                 "transfer-id-reused", {**transfer, "amount": 6}, ana.auth),
            Case("a transfer's id by another customer", "POST", "/banking/transfers", 409,
                 "transfer-id-reused", {**transfer, "from_account_id": b, "to_account_id": a},
                 bia.auth),
            Case("a transfer id that is no UUID", "POST", "/banking/transfers", 422,
                 "validation-error", {**transfer, "id": "my-transfer"}, ana.auth),
            # credentials
            *(
                Case(f"{what} on a customer's route", "GET", "/banking/accounts", 401,
                     "unauthorized", headers=headers)
                for what, headers in (
                    ("no credential", {}),
                    ("another scheme", {"Authorization": f"Basic {ana.secret}"}),
                    ("a made-up secret", {"Authorization": "Bearer bk_made-up"}),
                    ("the admin token", ADMIN),
                    ("a bare secret", {"Authorization": ana.secret}),
                )
            ),
            *(
                Case(f"{what} on the operator's route", "POST", "/banking/ledger/transfers", 401,
                     "unauthorized", {"transfers": [{"id": tid()}]}, headers)
                for what, headers in (("no credential", {}), ("a customer's secret", ana.auth))
            ),
            # the operator's routes
            Case("an empty batch", "POST", "/banking/ledger/transfers", 422, "validation-error",
                 {"transfers": []}, ADMIN),
            Case("a batch too long", "POST", "/banking/ledger/transfers", 422, "validation-error",
                 {"transfers": [{"id": tid()}] * 2001}, ADMIN),
            Case("a kind a client may not ask for", "POST", "/banking/ledger/transfers", 422,
                 "validation-error", {"transfers": [{"id": tid(), "kind": "expire"}]}, ADMIN),
            Case("a negative timeout", "POST", "/banking/ledger/transfers", 422,
                 "validation-error", {"transfers": [{"id": tid(), "timeout_seconds": -1}]}, ADMIN),
            Case("a batch amount of 3 decimals", "POST", "/banking/ledger/transfers", 422,
                 "validation-error", {"transfers": [{"id": tid(), "amount": 0.005}]}, ADMIN),
            Case("an account in another currency", "POST", "/banking/ledger/accounts", 422,
                 "unknown-currency", {"kind": "fees", "currency": "USD"}, ADMIN),
            Case("an account of no known limit", "POST", "/banking/ledger/accounts", 422,
                 "validation-error", {"kind": "fees", "limit": "overdraft"}, ADMIN),
            Case("an unknown account blocked", "POST",
                 f"/banking/ledger/accounts/{UNKNOWN}/block", 404, "not-found", headers=ADMIN),
            Case("a closed account unblocked", "POST",
                 f"/banking/ledger/accounts/{closed}/unblock", 409, "account-closed",
                 headers=ADMIN),
            Case("an unknown entry", "GET", f"/banking/ledger/transfers/{UNKNOWN}", 404,
                 "not-found", headers=ADMIN),
        ]  # fmt: skip
        broken = []
        for case in cases:
            answer = await http.request(
                case.method, case.path, json=case.body, headers=case.headers, params=case.params
            )
            got = (answer.status_code, answer.headers.get("content-type"))
            code = answer.json().get("code") if got[1] == PROBLEM else None
            if got != (case.status, PROBLEM) or code != case.code:
                broken.append(f"{case.what}: {answer.status_code} {answer.text[:200]}")
            if case.status == 401:
                assert answer.headers.get("www-authenticate") == "Bearer", case.what
        assert broken == [], "\n".join(broken)
        after = (await http.get(f"/banking/accounts/{a}", headers=ana.auth)).json()
        assert after == before  # nothing moved
        assert after["balance"]["posted"] == 51.50

        # in a batch each refusal is a result with its code, and nothing of it is written
        admin_account = await http.get(f"/banking/ledger/accounts/{a}", headers=ADMIN)
        assert admin_account.json()["balance"] == before["balance"]
        refused = [
            ({"debit_account_id": UNKNOWN, "credit_account_id": b, "amount": 1},
             "debit-account-not-found"),
            ({"debit_account_id": a, "credit_account_id": UNKNOWN, "amount": 1},
             "credit-account-not-found"),
            ({"debit_account_id": a, "credit_account_id": b, "amount": 1, "currency": "USD"},
             "currency-mismatch"),
            ({"debit_account_id": a, "credit_account_id": closed, "amount": 1}, "account-closed"),
            ({"debit_account_id": a, "credit_account_id": b, "amount": 10_000},
             "insufficient-funds"),
            ({"debit_account_id": a, "credit_account_id": b}, "amount-must-be-positive"),
            ({"debit_account_id": a, "credit_account_id": a, "amount": 1},
             "accounts-must-be-different"),
            ({"kind": "post", "pending_id": UNKNOWN}, "pending-transfer-not-found"),
            ({"debit_account_id": a, "credit_account_id": b, "amount": 1, "timeout_seconds": 5},
             "timeout-not-allowed"),
            ({"debit_account_id": a, "credit_account_id": b, "amount": 1.5}, "transfer-id-reused"),
        ]  # fmt: skip
        body = {"transfers": [{"id": tid(), **t} for t, _ in refused]}
        body["transfers"][-1]["id"] = deposited  # a deposit's id with other fields
        answer = await http.post("/banking/ledger/transfers", json=body, headers=ADMIN)
        assert answer.status_code == 200, answer.text
        assert [r["result"] for r in answer.json()["results"]] == [code for _, code in refused]
        assert all(r["entry"] is None for r in answer.json()["results"])
        after = (await http.get(f"/banking/accounts/{a}", headers=ana.auth)).json()
        assert after == before
