"""Every state-changing route and the credential it requires (issue 22, item 14), checked on the
apps as ``paycore api`` and ``paycore worker`` build them for every context (SQLite, a real NATS):
the table below must list each POST/PUT/PATCH/DELETE route the API serves (a new route without
an entry fails), and each route that requires a credential refuses a request without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from servers import Server
from web_kit import migrated_settings, routes_of, running

from paycore.bootstrap import build_api, build_worker
from paycore.platform.settings import Settings

ADMIN_TOKEN = "route-audit-admin-token"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

PUBLIC = "none: public by its contract"
ADMIN = "admin token (Authorization: Bearer $PAYCORE_ADMIN_TOKEN)"
MERCHANT = "merchant secret (Authorization: Bearer or x-token)"
MERCHANT_LOGIN = "merchant secret, in the body"
SESSION = "dashboard session cookie + X-CSRF-Token"
CUSTOMER = "banking customer secret (Authorization: Bearer bk_…)"
NETWORK = "card network: service token or admin token (Authorization: Bearer)"

CREDENTIALS: dict[tuple[str, str], str] = {
    # banking: anyone may become a customer; a customer reaches only their own accounts; the
    # ledger (any account, the batch of transfers, blocking) is the operator's
    ("POST", "/banking/customers"): PUBLIC,
    ("POST", "/banking/accounts"): CUSTOMER,
    ("DELETE", "/banking/accounts/{account_id}"): CUSTOMER,
    ("POST", "/banking/accounts/{account_id}/deposits"): CUSTOMER,
    ("POST", "/banking/accounts/{account_id}/withdrawals"): CUSTOMER,
    ("POST", "/banking/transfers"): CUSTOMER,
    ("POST", "/banking/ledger/accounts"): ADMIN,
    ("POST", "/banking/ledger/accounts/{account_id}/block"): ADMIN,
    ("POST", "/banking/ledger/accounts/{account_id}/unblock"): ADMIN,
    ("POST", "/banking/ledger/transfers"): ADMIN,
    # banking: cards (the customer's), card authorizations (the card network's)
    ("POST", "/banking/cards"): CUSTOMER,
    ("PATCH", "/banking/cards/{card_id}"): CUSTOMER,
    ("POST", "/banking/cards/{card_id}/block"): CUSTOMER,
    ("POST", "/banking/cards/{card_id}/unblock"): CUSTOMER,
    ("POST", "/banking/cards/{card_id}/payments"): CUSTOMER,
    ("POST", "/banking/card-authorizations"): NETWORK,
    ("POST", "/banking/card-authorizations/{authorization_id}/capture"): NETWORK,
    ("POST", "/banking/card-authorizations/{authorization_id}/void"): NETWORK,
    # banking: auto insurance, the customer's quotes and policies
    ("POST", "/banking/insurance/quotes"): CUSTOMER,
    ("POST", "/banking/insurance/policies"): CUSTOMER,
    ("POST", "/banking/insurance/policies/{policy_id}/cancel"): CUSTOMER,
    # banking: loans (the customer's)
    ("POST", "/banking/loans/simulations"): CUSTOMER,
    ("POST", "/banking/loans/applications"): CUSTOMER,
    ("POST", "/banking/loans/{loan_id}/payments"): CUSTOMER,
    ("POST", "/banking/loans/{loan_id}/payoff"): CUSTOMER,
    # banking: Pix keys, charges, payments and refunds (the customer's)
    ("POST", "/banking/pix/keys"): CUSTOMER,
    ("DELETE", "/banking/pix/keys/{key:path}"): CUSTOMER,
    ("POST", "/banking/pix/charges"): CUSTOMER,
    ("POST", "/banking/pix/payments"): CUSTOMER,
    ("POST", "/banking/pix/payments/{end_to_end_id}/refunds"): CUSTOMER,
    # commerce: the BTG challenge's public API (and its seed paths)
    ("POST", "/commerce/customers"): PUBLIC,
    ("POST", "/commerce/create/customer"): PUBLIC,
    ("POST", "/commerce/products"): PUBLIC,
    ("POST", "/commerce/create/product"): PUBLIC,
    ("POST", "/commerce/orders"): PUBLIC,
    ("POST", "/commerce/create/order"): PUBLIC,
    # fulfillment: the L0 service takes orders from anyone who can reach it
    ("POST", "/fulfillment/orders"): PUBLIC,
    # gateway
    ("POST", "/gateway/accounts"): ADMIN,
    ("PATCH", "/gateway/accounts/{account_id}"): ADMIN,
    ("DELETE", "/gateway/accounts/{account_id}"): ADMIN,
    ("POST", "/gateway/transactions"): MERCHANT,
    ("POST", "/gateway/dashboard/login"): MERCHANT_LOGIN,
    ("POST", "/gateway/dashboard/logout"): SESSION,
    # payments: the Rinha contract; the purge only with the admin token unless the deployment
    # opens it (PAYCORE_PAYMENTS_OPEN_PURGE, set by the contest's deployment)
    ("POST", "/payments/payments"): PUBLIC,
    ("POST", "/payments/purge-payments"): ADMIN,
    ("POST", "/payments/payments-purge"): ADMIN,
}


@pytest.fixture
def settings(tmp_path: Path, nats_server: Server) -> Settings:
    return migrated_settings(tmp_path, nats_server.url, admin_token=ADMIN_TOKEN)


def concrete(path: str) -> str:
    uuid = "00000000-0000-7000-8000-000000000000"
    for name in ("{account_id}", "{card_id}", "{authorization_id}", "{policy_id}", "{loan_id}"):
        path = path.replace(name, uuid)
    path = path.replace("{key:path}", "ana@example.com")
    return path.replace("{end_to_end_id}", "E99999999202612061830abcDEF12345")


async def test_every_state_changing_route_requires_its_credential(settings: Settings) -> None:
    async with running(build_api(settings)) as http:
        served = routes_of(http._transport.app, STATE_CHANGING)  # type: ignore[attr-defined]
        assert served == set(CREDENTIALS), "a state-changing route without its entry here"
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        shop = (await http.post("/gateway/accounts", json={"name": "shop"}, headers=admin)).json()
        merchant = {"Authorization": f"Bearer {shop['secret']}"}
        refused: dict[tuple[str, str], list[int]] = {}
        for (method, path), credential in CREDENTIALS.items():
            url = concrete(path)

            async def call(headers: dict[str, str], body: Any = None) -> int:
                answer = await http.request(method, url, headers=headers, json=body)  # noqa: B023
                return answer.status_code

            if credential in (ADMIN, NETWORK):  # neither nothing nor a merchant's secret
                refused[(method, path)] = [await call({}), await call(merchant)]
            elif credential == MERCHANT:  # neither nothing nor the admin token
                refused[(method, path)] = [await call({}), await call(admin)]
            elif credential == CUSTOMER:  # nothing, the admin token, a merchant's, a made-up one
                made_up = {"Authorization": "Bearer bk_not-a-customer-secret"}
                refused[(method, path)] = [
                    await call({}),
                    await call(admin),
                    await call(merchant),
                    await call(made_up),
                ]
            elif credential == MERCHANT_LOGIN:
                wrong = {"secret": "pcsk_not-a-secret"}
                refused[(method, path)] = [await call({}, wrong), await call(admin, wrong)]
            elif credential == SESSION:  # no session, or a session without its CSRF token
                alone = await call({})
                login = await http.post("/gateway/dashboard/login", json={"secret": shop["secret"]})
                assert login.status_code == 200
                refused[(method, path)] = [alone, await call({})]
                http.cookies.clear()
            else:  # public by contract: no credential is asked (a bad body is a 4xx of its own)
                assert credential == PUBLIC
                assert await call({}, {}) not in (401, 403, 503), (method, path)
        for route, statuses in refused.items():
            assert all(status in (401, 403) for status in statuses), (route, statuses)


async def test_the_worker_serves_no_state_changing_route_and_its_reads_need_the_service_token(
    settings: Settings,
) -> None:
    async with running(build_worker(settings)) as http:
        app = http._transport.app  # type: ignore[attr-defined]
        assert routes_of(app, STATE_CHANGING) == set()
        open_to_all = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")
        reads = {(m, p) for m, p in routes_of(app, {"GET"}) if not p.startswith(open_to_all)}
        assert ("GET", "/analytics") in reads
        for _, path in sorted(reads):
            if "{" in path:
                continue
            answer = await http.get(path, headers={"Authorization": "Bearer dev-service-token"})
            assert answer.status_code == 401, path


DOCUMENTED = {
    PUBLIC: set(),
    ADMIN: {"adminToken"},
    MERCHANT: {"merchantSecret", "merchantToken"},
    MERCHANT_LOGIN: set(),
    SESSION: {"dashboardSession"},
    CUSTOMER: {"customerSecret"},
    NETWORK: {"serviceToken", "adminToken"},
}
"""The security schemes the OpenAPI document names for each kind of credential."""


async def test_the_document_declares_the_credential_of_each_route(settings: Settings) -> None:
    async with running(build_api(settings)) as http:
        document = (await http.get("/openapi.json")).json()
    documented = 0
    for (method, path), credential in CREDENTIALS.items():
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:  # the seed's alias paths serve the same route, undocumented
            continue
        declared = {name for requirement in operation.get("security", []) for name in requirement}
        assert declared == DOCUMENTED[credential], (method, path, declared)
        documented += 1
    assert documented >= 12
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == set().union(*DOCUMENTED.values())
