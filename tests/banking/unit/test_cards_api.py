"""Banking's cards as customers and the card network use them, over HTTP in process, on a real
SQLite file: issue (number and CVV shown once), read masked, block and unblock, credit limits,
authorize / capture (all or less) / void with the balances each leaves, declines, replays of an
id with the same or other fields, bad amounts, other customers' cards, credentials. After each
flow the ledger's journal and balances check out."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from cards_kit import ADMIN, BIN, NETWORK, Bank, bearer, data, wired
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import problem

from paycore.banking.cards.store import authorizations, cards
from paycore.banking.ledger import service as ledger
from paycore.banking.ledger.domain import Status
from paycore.banking.ledger.store import entries
from paycore.platform.cards import luhn_valid
from paycore.platform.clock import utcnow
from paycore.platform.ids import uuid7
from paycore.platform.persistence.db import metadata

PROBLEM = "application/problem+json"
D = Decimal


@pytest.fixture
async def bank(engine: AsyncEngine) -> AsyncIterator[Bank]:
    async with wired(engine) as wired_bank:
        yield wired_bank


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


# --- issue and read ------------------------------------------------------------------------


async def test_a_debit_card_is_issued_with_its_number_and_cvv_shown_once(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    issued = await bank.issue(ana, checking)
    number, now = issued["full_number"], utcnow()
    assert len(number) == 16
    assert number.startswith(BIN)
    assert luhn_valid(number)
    assert len(issued["cvv"]) == 3
    assert issued["cvv"].isdigit()
    assert issued["number"] == "**** **** **** " + number[-4:]
    assert issued["last4"] == number[-4:]
    assert (issued["brand"], issued["kind"], issued["status"]) == ("elo", "debit", "active")
    assert (issued["exp_month"], issued["exp_year"]) == (now.month, now.year + 5)
    assert issued["account_id"] == checking
    assert issued["credit_limit"] is None
    assert issued["available"] == D("100.00")  # what the checking account holds

    again = await bank.http.get(f"/banking/cards/{issued['id']}", headers=ana)
    read = data(again)
    assert "full_number" not in read
    assert "cvv" not in read
    assert number not in again.text
    assert read == {k: v for k, v in issued.items() if k not in ("full_number", "cvv")}
    listed = await bank.http.get("/banking/cards", headers=ana)
    assert data(listed) == [read]


async def test_neither_the_number_nor_the_cvv_is_stored_anywhere(
    bank: Bank, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every column of every row of every table (the outbox's event bodies included) is
    searched for the number and the CVV, as values of their own."""
    monkeypatch.setattr("paycore.banking.cards.service.new_cvv", lambda: "739")
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="1000.00")
    once = {**ana, "Idempotency-Key": "issue-1"}  # the idempotency layer keeps answers
    issued = await bank.http.post(
        "/banking/cards", json={"account_id": checking, "kind": "debit"}, headers=once
    )
    card = data(issued)
    assert card["cvv"] == "739"
    held = await bank.approved(card, "25.50")
    assert (await bank.capture(held["id"], "20.00")).status_code == 200
    wrong = await bank.authorize(card, "11.11", cvv="946")
    assert data(wrong)["result"] == "wrong-cvv"

    found: list[str] = []
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).all():
                for column, value in zip(table.columns, row, strict=True):
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    for secret in (card["full_number"], "739", "946"):
                        if _own_value(secret, text):
                            found.append(f"{table.name}.{column.name} holds {secret}")
    assert found == []
    assert await count(engine, cards) == 1  # the scan did see the card's row


def _own_value(secret: str, text: str) -> bool:
    """Whether ``secret`` is in ``text`` as a value of its own, not inside a longer run of
    digits or of base64/hex characters (ids, hashes, ciphertexts, timestamps)."""
    edge = r"0-9A-Za-z+/=_-"
    return re.search(rf"(?<![{edge}]){secret}(?![{edge}])", text) is not None


async def test_a_new_cards_answer_is_not_cached_nor_replayed(bank: Bank) -> None:
    """It shows the number and the CVV: ``Cache-Control: no-store``, and a retry under the same
    Idempotency-Key is told the card exists instead of being shown them again."""
    ana = await bank.customer()
    checking = await bank.account(ana)
    once = {**ana, "Idempotency-Key": "issue-1"}
    body = {"account_id": checking, "kind": "debit"}
    first = await bank.http.post("/banking/cards", json=body, headers=once)
    assert first.status_code == 201
    assert first.headers["cache-control"] == "no-store"
    retry = await bank.http.post("/banking/cards", json=body, headers=once)
    problem(retry, 409, "idempotency-answer-not-kept")
    assert first.json()["full_number"] not in retry.text
    assert len(data(await bank.http.get("/banking/cards", headers=ana))) == 1


async def test_a_card_is_issued_only_on_the_callers_open_checking_account(bank: Bank) -> None:
    ana, bia = await bank.customer(), await bank.customer("Bia Souza")
    anas = await bank.account(ana)
    issue = "/banking/cards"
    problem(
        await bank.http.post(issue, json={"account_id": anas, "kind": "debit"}, headers=bia),
        404,
        "not-found",
    )
    problem(
        await bank.http.post(issue, json={"account_id": uuid7(), "kind": "debit"}, headers=ana),
        404,
        "not-found",
    )
    closed = await bank.account(ana)
    assert (await bank.http.delete(f"/banking/accounts/{closed}", headers=ana)).status_code == 200
    problem(
        await bank.http.post(issue, json={"account_id": closed, "kind": "debit"}, headers=ana),
        409,
        "account-closed",
    )
    for body, code in [
        ({"account_id": anas, "kind": "credit"}, "credit-limit-required"),
        ({"account_id": anas, "kind": "debit", "credit_limit": 100}, "credit-limit-required"),
        ({"account_id": anas, "kind": "credit", "credit_limit": 50000.01}, "credit-limit-too-high"),
    ]:
        problem(await bank.http.post(issue, json=body, headers=ana), 422, code)
    for body in [
        {"account_id": anas, "kind": "prepaid"},
        {"account_id": anas, "kind": "credit", "credit_limit": 0},
        {"account_id": anas, "kind": "credit", "credit_limit": -5},
        {"account_id": anas, "kind": "credit", "credit_limit": "100"},
        {"account_id": anas, "kind": "credit", "credit_limit": 10.001},
        {"account_id": "not-a-uuid", "kind": "debit"},
    ]:
        problem(await bank.http.post(issue, json=body, headers=ana), 422, "validation-error")
    assert (
        await bank.http.post(issue, json={"account_id": anas, "kind": "debit"})
    ).status_code == 401
    assert await count(bank.engine, cards) == 0


async def test_another_customers_card_is_unknown_to_the_caller(bank: Bank) -> None:
    ana, bia = await bank.customer(), await bank.customer("Bia Souza")
    card = await bank.issue(ana, await bank.account(ana), "credit", credit_limit=100)
    bias_account = await bank.account(bia, deposit="50.00")
    path = f"/banking/cards/{card['id']}"
    calls = [
        ("GET", path, None),
        ("POST", path + "/block", None),
        ("POST", path + "/unblock", None),
        ("PATCH", path, {"credit_limit": 200}),
        ("POST", path + "/payments", {"amount": 10}),
        ("GET", path + "/transactions", None),
    ]
    for method, url, body in calls:
        problem(await bank.http.request(method, url, json=body, headers=bia), 404, "not-found")
        unknown = url.replace(card["id"], uuid7())
        problem(await bank.http.request(method, unknown, json=body, headers=ana), 404, "not-found")
        assert (await bank.http.request(method, url, json=body)).status_code == 401
    assert (await bank.card(ana, card["id"]))["status"] == "active"
    assert (await bank.balance(bia, bias_account))["posted"] == 50


# --- authorize, capture, void --------------------------------------------------------------


async def test_an_authorization_holds_the_amount_and_a_partial_capture_posts_part_of_it(
    bank: Bank,
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    settlement = bank.bank["bank:card-settlement"]

    held = await bank.approved(card, "30.00")
    assert held["status"] == "pending"
    assert held["amount"] == D("30.00")
    assert held["card_id"] == card["id"]
    assert held["last4"] == card["last4"]
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["available"], balance["held"]) == (100, 70, 30)
    assert (await bank.card(ana, card["id"]))["available"] == D("70.00")

    captured = await bank.capture(held["id"], "25.50")
    assert captured.status_code == 200, captured.text
    assert data(captured)["status"] == "captured"
    assert data(captured)["captured"] == D("25.50")
    balance = data(await bank.http.get(f"/banking/accounts/{checking}/balance", headers=ana))
    assert (balance["posted"], balance["available"], balance["held"]) == (
        D("74.50"),
        D("74.50"),
        D("0.00"),
    )
    assert await bank.posted(settlement) == 2550
    await bank.ledger_whole()


async def test_a_capture_without_an_amount_posts_all_and_a_void_releases_all(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    whole = await bank.approved(card, "40.00")
    assert data(await bank.capture(whole["id"]))["captured"] == D("40.00")
    voided = await bank.approved(card, "60.00")
    assert (await bank.balance(ana, checking))["available"] == 0
    answer = await bank.void(voided["id"])
    assert answer.status_code == 200, answer.text
    assert data(answer)["status"] == "voided"
    assert data(answer)["captured"] is None
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["available"], balance["held"]) == (60, 60, 0)
    await bank.ledger_whole()


async def test_resolving_an_authorization_twice(bank: Bank) -> None:
    """The same capture or void again answers the same; anything else is refused with the
    ledger's code, and no cent moves twice."""
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    first = await bank.approved(card, "30.00")
    done = await bank.capture(first["id"], "10.00")
    assert (await bank.capture(first["id"], "10.00")).json() == done.json()
    problem(await bank.capture(first["id"], "12.00"), 409, "transfer-id-reused")
    problem(await bank.capture(first["id"]), 409, "transfer-id-reused")  # all of it: 30.00
    problem(await bank.void(first["id"]), 422, "pending-transfer-already-posted")

    second = await bank.approved(card, "20.00")
    problem(await bank.capture(second["id"], "20.01"), 422, "exceeds-pending-transfer-amount")
    voided = await bank.void(second["id"])
    assert (await bank.void(second["id"])).json() == voided.json()
    problem(await bank.capture(second["id"]), 422, "pending-transfer-already-voided")

    declined = await bank.authorize(card, "1000.00")
    assert data(declined)["result"] == "insufficient-funds"
    problem(await bank.capture(declined.json()["id"]), 409, "authorization-declined")
    problem(await bank.void(declined.json()["id"]), 409, "authorization-declined")
    problem(await bank.capture(uuid7()), 404, "not-found")
    problem(await bank.void(uuid7()), 404, "not-found")

    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["held"]) == (90, 0)
    await bank.ledger_whole()


async def test_an_authorization_after_a_block_is_declined_until_unblocked(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    blocked = await bank.http.post(f"/banking/cards/{card['id']}/block", headers=ana)
    assert blocked.status_code == 200, blocked.text
    assert blocked.json()["status"] == "blocked"
    declined = await bank.authorize(card, "10.00")
    assert declined.status_code == 201
    assert (data(declined)["result"], data(declined)["status"]) == ("card-blocked", "declined")
    assert (await bank.balance(ana, checking))["available"] == 100
    again = await bank.http.post(f"/banking/cards/{card['id']}/block", headers=ana)
    assert again.json()["status"] == "blocked"  # blocking twice is one block

    unblocked = await bank.http.post(f"/banking/cards/{card['id']}/unblock", headers=ana)
    assert unblocked.json()["status"] == "active"
    await bank.approved(card, "10.00")
    assert (await bank.balance(ana, checking))["available"] == 90


async def test_declines_are_answered_with_their_reason_and_recorded(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="50.00")
    card = await bank.issue(ana, checking)
    other_cvv = f"{(int(card['cvv']) + 1) % 1000:03d}"
    unknown = card["full_number"][:-2] + f"{(int(card['full_number'][-2:]) + 1) % 100:02d}"
    cases = [
        ({"cvv": other_cvv}, "50.00", "wrong-cvv"),
        ({"exp_month": card["exp_month"] % 12 + 1}, "50.00", "wrong-expiry"),
        ({"exp_year": card["exp_year"] + 1}, "50.00", "wrong-expiry"),
        ({"number": unknown}, "50.00", "unknown-card"),
        ({}, "50.01", "insufficient-funds"),
        ({"currency": "USD"}, "1.00", "currency-mismatch"),
    ]
    before = {r: _counted(r) for _, _, r in cases}
    for changes, amount, result in cases:
        answer = await bank.authorize(card, amount, **changes)
        assert answer.status_code == 201, answer.text
        found = data(answer)
        assert (found["result"], found["status"]) == (result, "declined"), changes
        assert found["expires_at"] is None
    assert await count(bank.engine, authorizations) == len(cases)
    assert (await bank.balance(ana, checking))["available"] == 50
    listed = data(await bank.http.get(f"/banking/cards/{card['id']}/transactions", headers=ana))
    results = [a["result"] for a in listed["data"]]
    assert results == [r for changes, _, r in cases if "number" not in changes]
    assert {r: _counted(r) - before[r] for r in before} == Counter(r for _, _, r in cases)
    approved = _counted("approved")
    await bank.approved(card, "50.00")  # the very limit
    assert _counted("approved") == approved + 1


def _counted(outcome: str) -> float:
    sample = REGISTRY.get_sample_value(
        "paycore_banking_card_authorizations_total", {"outcome": outcome}
    )
    return sample or 0.0


async def test_an_authorization_on_a_blocked_account_is_declined_by_the_ledger(
    bank: Bank,
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="50.00")
    card = await bank.issue(ana, checking)
    async with bank.db.transaction() as tx:
        await ledger.set_status(tx, checking, Status.BLOCKED, utcnow())
    assert data(await bank.authorize(card, "1.00"))["result"] == "account-blocked"


async def test_replays_of_an_authorization_id(bank: Bank) -> None:
    """The same id with the same fields is the same authorization (one hold); with any other
    field it is refused, and nothing moves."""
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    first = await bank.authorize(card, "30.00", id=(auth_id := uuid7()))
    assert first.status_code == 201
    again = await bank.authorize(card, "30.00", id=auth_id)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert (await bank.balance(ana, checking))["held"] == 30
    other_cvv = f"{(int(card['cvv']) + 1) % 1000:03d}"
    for amount, changes in [
        ("30.01", {}),
        ("30.00", {"merchant": "Outra Loja"}),
        ("30.00", {"cvv": other_cvv}),
        ("30.00", {"exp_year": card["exp_year"] + 1}),
        ("30.00", {"currency": "USD"}),
    ]:
        problem(
            await bank.authorize(card, amount, id=auth_id, **changes),
            409,
            "authorization-id-reused",
        )
    assert (await bank.balance(ana, checking))["held"] == 30
    assert await count(bank.engine, authorizations) == 1

    # a declined one is answered as it was, even once it would be approved
    declined = await bank.authorize(card, "80.00", id=(late := uuid7()))
    assert declined.json()["result"] == "insufficient-funds"
    await bank.deposit(ana, checking, "100.00")
    assert (await bank.authorize(card, "80.00", id=late)).json() == declined.json()
    await bank.ledger_whole()


@pytest.mark.parametrize(
    "amount",
    ["0", "0.00", "-1", "-0.01", "1.005", "0.001", '"10"', '"10.00"', "true", "null", "1e-3",
     "10000000000000.01", "[1]"],
)  # fmt: skip
async def test_a_bad_amount_is_refused_and_nothing_is_recorded_or_held(
    bank: Bank, amount: str
) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="100.00")
    card = await bank.issue(ana, checking)
    body = problem(await bank.authorize(card, amount), 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "amount"]
    assert await count(bank.engine, authorizations) == 0
    held = await bank.approved(card, "10.00")
    if amount != "null":  # an amount left out (or null) captures all of it
        problem(await bank.capture(held["id"], amount), 422, "validation-error")
    balance = await bank.balance(ana, checking)
    assert (balance["posted"], balance["held"]) == (100, 10)


async def test_exact_amounts_in_any_json_spelling_are_taken(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="2000.00")
    card = await bank.issue(ana, checking)
    for amount, cents in [("1e3", D("1000.00")), ("0.1", D("0.10")), ("7", D("7.00")),
                          ("1.50", D("1.50")), ("2.500", D("2.50"))]:  # fmt: skip
        assert (await bank.approved(card, amount))["amount"] == cents
    assert (await bank.balance(ana, checking))["held"] == D("1011.10")


async def test_bad_authorization_fields_are_refused(bank: Bank) -> None:
    ana = await bank.customer()
    card = await bank.issue(ana, await bank.account(ana, deposit="10.00"))
    for changes in [
        {"id": "not-a-uuid"},
        {"number": 6504850000000000},
        {"number": "6504-8500"},
        {"cvv": 123},
        {"cvv": "12"},
        {"exp_month": 13},
        {"exp_month": "12"},
        {"merchant": ""},
        {"merchant": " padded"},
        {"currency": "brl"},
        {"extra": 1},
    ]:
        problem(await bank.authorize(card, "1.00", **changes), 422, "validation-error")
    assert await count(bank.engine, authorizations) == 0


async def test_the_card_networks_routes_take_the_service_token_or_the_admin_token(
    bank: Bank,
) -> None:
    ana = await bank.customer()
    card = await bank.issue(ana, await bank.account(ana, deposit="10.00"))
    body = {
        "id": uuid7(),
        "number": card["full_number"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "cvv": card["cvv"],
        "amount": 1,
        "merchant": "Padaria Real",
    }
    url = "/banking/card-authorizations"
    for refused in [{}, ana, bearer("wrong-token"), {"Authorization": ADMIN}]:
        problem(await bank.http.post(url, json=body, headers=refused), 401, "unauthorized")
        for path in (f"{url}/{body['id']}/capture", f"{url}/{body['id']}/void"):
            problem(await bank.http.post(path, json={}, headers=refused), 401, "unauthorized")
    assert await count(bank.engine, authorizations) == 0
    assert (await bank.http.post(url, json=body, headers=bearer(ADMIN))).status_code == 201
    read = await bank.http.get(f"{url}/{body['id']}", headers=NETWORK)
    assert read.json()["result"] == "approved"
    problem(await bank.http.get(f"{url}/{uuid7()}", headers=NETWORK), 404, "not-found")


async def test_card_transactions_list_what_became_of_each_authorization(bank: Bank) -> None:
    ana = await bank.customer()
    card = await bank.issue(ana, await bank.account(ana, deposit="100.00"))
    captured = await bank.approved(card, "10.00")
    await bank.capture(captured["id"], "7.25")
    voided = await bank.approved(card, "20.00")
    await bank.void(voided["id"])
    await bank.approved(card, "30.00")
    await bank.authorize(card, "90.00")  # declined: 40.00 left
    url = f"/banking/cards/{card['id']}/transactions"
    page = data(await bank.http.get(url, headers=ana))
    assert page["card_id"] == card["id"]
    summary = [(a["amount"], a["status"], a["result"], a["captured"]) for a in page["data"]]
    assert summary == [
        (D("10.00"), "captured", "approved", D("7.25")),
        (D("20.00"), "voided", "approved", None),
        (D("30.00"), "pending", "approved", None),
        (D("90.00"), "declined", "insufficient-funds", None),
    ]
    assert page["data"][0]["resolved_at"] is not None
    assert page["data"][2]["expires_at"] is not None
    second = data(await bank.http.get(url, params={"page": 1, "limit": 3}, headers=ana))
    assert [a["amount"] for a in second["data"]] == [D("90.00")]


# --- credit cards --------------------------------------------------------------------------


async def test_a_credit_card_spends_its_limit_and_the_limit_moves(bank: Bank) -> None:
    ana = await bank.customer()
    checking = await bank.account(ana, deposit="500.00")
    lines = bank.bank["bank:credit-lines"]
    card = await bank.issue(ana, checking, "credit", credit_limit=1000)
    assert (card["kind"], card["credit_limit"], card["available"]) == (
        "credit",
        D("1000.00"),
        D("1000.00"),
    )
    assert await bank.posted(lines) == -100000
    spent = await bank.approved(card, "600.00")
    assert (await bank.card(ana, card["id"]))["available"] == D("400.00")
    assert (await bank.card(ana, card["id"]))["held"] == D("600.00")
    await bank.capture(spent["id"])
    assert (await bank.balance(ana, checking))["posted"] == 500  # a credit card spares it

    patch = f"/banking/cards/{card['id']}"
    problem(
        await bank.http.patch(patch, json={"credit_limit": 500}, headers=ana),
        409,
        "credit-limit-in-use",
    )
    lowered = await bank.http.patch(patch, json={"credit_limit": 700}, headers=ana)
    assert lowered.status_code == 200, lowered.text
    assert (data(lowered)["credit_limit"], data(lowered)["available"]) == (D("700.00"), D("100.00"))
    assert data(await bank.authorize(card, "100.01"))["result"] == "insufficient-funds"
    raised = data(await bank.http.patch(patch, json={"credit_limit": 2000.5}, headers=ana))
    assert (raised["credit_limit"], raised["available"]) == (D("2000.50"), D("1400.50"))
    problem(
        await bank.http.patch(patch, json={"credit_limit": 50000.01}, headers=ana),
        422,
        "credit-limit-too-high",
    )
    assert await bank.posted(lines) == -200050

    paid = await bank.http.post(
        f"{patch}/payments", json={"amount": 250, "id": (pay_id := uuid7())}, headers=ana
    )
    assert paid.status_code == 201, paid.text
    assert data(paid)["available"] == D("1650.50")
    again = await bank.http.post(
        f"{patch}/payments", json={"amount": 250, "id": pay_id}, headers=ana
    )
    assert data(again)["available"] == D("1650.50")  # one payment
    problem(
        await bank.http.post(f"{patch}/payments", json={"amount": 251, "id": pay_id}, headers=ana),
        409,
        "transfer-id-reused",
    )
    problem(
        await bank.http.post(f"{patch}/payments", json={"amount": 1000}, headers=ana),
        422,
        "insufficient-funds",
    )
    assert (await bank.balance(ana, checking))["posted"] == 250
    await bank.ledger_whole()


async def test_a_debit_card_has_no_limit_to_change_nor_bill_to_pay(bank: Bank) -> None:
    ana = await bank.customer()
    card = await bank.issue(ana, await bank.account(ana, deposit="10.00"))
    url = f"/banking/cards/{card['id']}"
    problem(
        await bank.http.patch(url, json={"credit_limit": 100}, headers=ana),
        409,
        "not-a-credit-card",
    )
    problem(
        await bank.http.post(f"{url}/payments", json={"amount": 1}, headers=ana),
        409,
        "not-a-credit-card",
    )


async def test_a_credit_cards_account_is_not_the_customers_to_move_money_from(
    bank: Bank, engine: AsyncEngine
) -> None:
    """The card's own account holds the bank's credit: the customer's account routes do not
    reach it (no cash advance by transfer or withdrawal)."""
    ana = await bank.customer()
    await bank.account(ana)
    card = await bank.issue(ana, await bank.account(ana), "credit", credit_limit=100)
    async with engine.connect() as conn:
        funding = (
            await conn.execute(select(cards.c.funding_account_id).where(cards.c.id == card["id"]))
        ).scalar_one()
    listed = data(await bank.http.get("/banking/accounts", headers=ana))
    assert funding not in [a["id"] for a in listed]
    problem(
        await bank.http.post(
            f"/banking/accounts/{funding}/withdrawals", json={"amount": 10}, headers=ana
        ),
        404,
        "not-found",
    )
    async with engine.connect() as conn:
        journal = (await conn.execute(select(entries.c.code))).scalars().all()
    assert journal == ["credit-limit"]
