"""Banking's Pix as customers use it, over HTTP in process, on a real SQLite file: keys (each
kind, the limit, uniqueness, the masked lookup), static and dynamic charges and their QR
images, payments by code and by key (replays of an end-to-end id with the same or other
fields), refunds, and every bad input on each route answered with a 4xx naming what is wrong,
nothing moved. After each flow the ledger's journal and balances check out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from cards_kit import data
from pix_kit import PixClient, ledger_whole, outbox_events, wired
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import problem

from paycore.banking import messages
from paycore.banking.ledger.store import entries
from paycore.banking.pix import brcode, store
from paycore.banking.pix.domain import check_end_to_end_id
from paycore.banking.pix.emv import with_crc
from paycore.banking.pix.store import charges, keys, payments, refunds
from paycore.platform.clock import parse_iso, utcnow
from paycore.platform.ids import uuid7

D = Decimal
ANA_CPF = "529.982.247-25"
CNPJ = "00.038.166/0001-05"
E2E = "E99999999202612061830abcDEF12345"  # this bank's ISPB (the kit's), a valid minute


@pytest.fixture
async def pix(engine: AsyncEngine) -> AsyncIterator[PixClient]:
    async with wired(engine) as client:
        yield client


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def journal_codes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(entries.c.code).order_by(entries.c.seq))).scalars())


def later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    """Pix's routes see the clock ``delta`` ahead."""
    ahead = timedelta(**delta)
    monkeypatch.setattr("paycore.banking.pix.api.utcnow", lambda: utcnow() + ahead)


def recoded(payload: str, old: str, new: str) -> str:
    """``payload`` with ``old`` replaced by ``new`` and its CRC made right again: a code
    changed by someone who knows how to close it."""
    body = payload[:-8].replace(old, new)
    return with_crc(body)


# --- keys ----------------------------------------------------------------------------------


async def test_a_customer_registers_one_key_of_each_kind_lists_and_deletes_them(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana = await pix.customer("Ana Lima", ANA_CPF)
    checking = await pix.account(ana)
    registered = [
        await pix.key(ana, checking, "cpf"),  # her own, taken from her record
        await pix.key(ana, checking, "cnpj", key=CNPJ),
        await pix.key(ana, checking, "email", key="Ana.Lima@Example.COM"),
        await pix.key(ana, checking, "phone", key="+55 (61) 91234-5678"),
        await pix.key(ana, checking, "evp"),
    ]
    assert registered[:4] == [
        "52998224725",
        "00038166000105",
        "ana.lima@example.com",
        "+5561912345678",
    ]
    assert brcode.key_kind(registered[4]).value == "evp"
    listed = data(await pix.http.get("/banking/pix/keys", headers=ana))
    assert [(k["key"], k["kind"], k["account_id"]) for k in listed] == [
        (key, kind, checking)
        for key, kind in zip(registered, ["cpf", "cnpj", "email", "phone", "evp"], strict=True)
    ]

    full = await pix.post("/banking/pix/keys", ana, account_id=checking, kind="evp")
    body = problem(full, 409, "pix-key-limit-reached")
    assert "5" in body["detail"]
    other = await pix.account(ana)  # the limit is an account's
    await pix.key(ana, other, "evp")

    deleted = await pix.http.delete("/banking/pix/keys/ana.lima@EXAMPLE.com", headers=ana)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["key"] == "ana.lima@example.com"
    await pix.key(ana, checking, "evp")  # a place is free again
    assert await count(engine, keys) == 6
    problem(await pix.http.delete(f"/banking/pix/keys/{CNPJ}", headers={}), 401, "unauthorized")
    assert (await pix.http.delete(f"/banking/pix/keys/{CNPJ}", headers=ana)).status_code == 200
    assert await count(engine, keys) == 5


async def test_a_key_is_unique_across_the_platform(pix: PixClient, engine: AsyncEngine) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia)
    await pix.key(ana, anas, "email", key="shared@example.com")
    taken = await pix.post(
        "/banking/pix/keys", bia, account_id=bias, kind="email", key="SHARED@example.com"
    )
    assert "another account" in problem(taken, 409, "pix-key-taken")["detail"]
    again = await pix.post(
        "/banking/pix/keys",
        ana,
        account_id=await pix.account(ana),
        kind="email",
        key="shared@example.com",
    )
    assert anas in problem(again, 409, "pix-key-taken")["detail"]
    deleted = await pix.http.delete("/banking/pix/keys/shared@example.com", headers=ana)
    assert deleted.status_code == 200
    await pix.key(bia, bias, "email", key="shared@example.com")  # free once deleted
    assert await count(engine, keys) == 1


async def test_bad_keys_are_refused_and_nothing_is_registered(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer("Ana Lima", ANA_CPF), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia)
    closed = await pix.account(ana)
    assert (await pix.http.delete(f"/banking/accounts/{closed}", headers=ana)).status_code == 200
    other_cpf = "111.444.777-35"
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"kind": "cpf", "key": other_cpf}, 422, "cpf-not-yours", "own CPF"),
        ({"kind": "cpf", "key": "529.982.247-26"}, 422, "invalid-pix-key", "check digits"),
        ({"kind": "email", "key": "+5561912345678"}, 422, "key-kind-mismatch", "phone key"),
        ({"kind": "phone", "key": ANA_CPF}, 422, "key-kind-mismatch", "CPF key"),
        ({"kind": "email"}, 422, "invalid-pix-key", "`key`"),
        ({"kind": "evp", "key": str(uuid7())}, 422, "invalid-pix-key", "generated by the bank"),
        ({"kind": "email", "key": "ana@localhost"}, 422, "invalid-pix-key", "domain"),
        ({"kind": "phone", "key": "+1 415 555 0100"}, 422, "invalid-pix-key", "+55"),
        ({"kind": "phone", "key": "+55619123"}, 422, "invalid-pix-key", "10 or 11 digits"),
        ({"kind": "cnpj", "key": "00.038.166/0001-06"}, 422, "invalid-pix-key", "check digits"),
        ({"kind": "evp", "account_id": bias}, 404, "not-found", bias),
        ({"kind": "evp", "account_id": str(uuid7())}, 404, "not-found", "unknown"),
        ({"kind": "evp", "account_id": closed}, 409, "account-closed", closed),
        ({"kind": "iban"}, 422, "validation-error", "kind"),
        ({"kind": "evp", "account_id": "not-a-uuid"}, 422, "validation-error", "account_id"),
        ({"kind": "email", "key": " ana@example.com"}, 422, "validation-error", "key"),
        ({"kind": "email", "key": "a" * 101}, 422, "validation-error", "key"),
        ({"kind": "evp", "extra": 1}, 422, "validation-error", "extra"),
    ]
    for fields, status, code, said in cases:
        answer = await pix.post("/banking/pix/keys", ana, **{"account_id": anas, **fields})
        assert said in problem(answer, status, code)["detail"], fields
    anonymous = await pix.post("/banking/pix/keys", {}, account_id=anas, kind="evp")
    problem(anonymous, 401, "unauthorized")
    assert await count(engine, keys) == 0
    assert data(await pix.http.get("/banking/pix/keys", headers=ana)) == []


async def test_a_key_looked_up_shows_its_owner_masked_and_never_their_cpf_name_or_balance(
    pix: PixClient,
) -> None:
    ana = await pix.customer("Ana Maria da Silva Lima", ANA_CPF)
    checking = await pix.account(ana, deposit="1234.56")
    await pix.key(ana, checking, "cpf", key=ANA_CPF)
    bia = await pix.customer("Bia Souza")
    answer = await pix.http.get(f"/banking/pix/keys/{ANA_CPF}", headers=bia)
    assert answer.status_code == 200, answer.text
    assert data(answer) == {
        "key": "52998224725",
        "kind": "cpf",
        "owner": {
            "name": "Ana M. S. L.",
            "ispb": "99999999",
            "branch": "0001",
            "account": "****" + checking[-4:],
            "account_type": "CACC",
        },
    }
    for secret in ("Maria", "Silva", checking, "1234.56"):
        assert secret not in answer.text
    for path, status, code in [
        ("/banking/pix/keys/nobody@example.com", 404, "not-found"),
        ("/banking/pix/keys/not-a-key", 422, "invalid-pix-key"),
        ("/banking/pix/keys/%2B5561912345678", 404, "not-found"),
    ]:
        problem(await pix.http.get(path, headers=bia), status, code)
        problem(await pix.http.delete(path, headers=bia), status, code)
    problem(await pix.http.get(f"/banking/pix/keys/{ANA_CPF}"), 401, "unauthorized")
    problem(await pix.http.delete(f"/banking/pix/keys/{ANA_CPF}", headers=bia), 404, "not-found")
    assert (await pix.http.get(f"/banking/pix/keys/{ANA_CPF}", headers=ana)).status_code == 200


# --- charges -------------------------------------------------------------------------------


async def test_a_static_charge_carries_the_key_amount_txid_and_the_normalized_name(
    pix: PixClient,
) -> None:
    ana = await pix.customer("Conceição Araújo")
    checking = await pix.account(ana)
    key = await pix.key(ana, checking, "email", key="conceicao@example.com")
    charge = await pix.charge(ana, key, "static", amount="25.90", txid="PEDIDO42")
    assert (charge["kind"], charge["status"], charge["txid"]) == ("static", "active", "PEDIDO42")
    assert (charge["amount"], charge["account_id"], charge["key"]) == (D("25.90"), checking, key)
    assert (charge["location"], charge["expires_at"], charge["paid_by"]) == (None, None, None)
    code = brcode.decode(charge["br_code"])
    assert (code.key, code.amount, code.txid) == (key, 2590, "PEDIDO42")
    assert (code.name, code.city) == ("Conceicao Araujo", "SAO PAULO")
    assert not code.is_dynamic
    bare = await pix.charge(ana, key, "static")  # the payer types the amount; a txid is made
    assert bare["amount"] is None
    assert len(bare["txid"]) == 25
    assert brcode.decode(bare["br_code"]).txid == bare["txid"]
    read = await pix.http.get(f"/banking/pix/charges/{charge['txid']}", headers=ana)
    assert data(read) == charge


async def test_a_dynamic_charge_has_a_location_an_expiry_and_its_qr_images(
    pix: PixClient,
) -> None:
    ana = await pix.customer()
    key = await pix.key(ana, await pix.account(ana))
    charge = await pix.charge(ana, key, amount="150.00", expires_in=600)
    assert (charge["kind"], charge["status"], charge["amount"]) == ("dynamic", "active", 150)
    assert len(charge["txid"]) == 35
    assert charge["txid"].isalnum()
    assert charge["location"].startswith("pix.paycore.dev/pix/v2/cob/")
    code = brcode.decode(charge["br_code"])
    assert (code.url, code.amount, code.key, code.point_of_initiation) == (
        charge["location"],
        15000,
        None,
        "12",
    )
    assert _seconds(charge["expires_at"]) - _seconds(charge["created_at"]) == 600

    png = await pix.http.get(charge["qr_png"], headers=ana)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert charge["qr_png"] == f"/banking/pix/charges/{charge['txid']}/qr.png"
    svg = await pix.http.get(charge["qr_svg"], headers=ana)
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    bia = await pix.customer("Bia Souza")
    for url in (f"/banking/pix/charges/{charge['txid']}", charge["qr_png"], charge["qr_svg"]):
        problem(await pix.http.get(url, headers=bia), 404, "not-found")  # the owner's only
        problem(await pix.http.get(url), 401, "unauthorized")
        problem(
            await pix.http.get(url.replace(charge["txid"], "x" * 35), headers=ana), 404, "not-found"
        )
    problem(
        await pix.http.get("/banking/pix/charges/not-a-txid", headers=ana), 422, "validation-error"
    )


def _seconds(moment: str) -> float:
    return parse_iso(moment).timestamp()


async def test_bad_charges_are_refused_and_nothing_is_made(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    key = await pix.key(ana, await pix.account(ana))
    bias_key = await pix.key(bia, await pix.account(bia))
    await pix.charge(ana, key, "static", txid="TAKEN1")
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"kind": "dynamic", "key": bias_key, "amount": "1.00"}, 404, "not-found", bias_key),
        ({"kind": "static", "key": "nobody@example.com"}, 404, "not-found", "nobody"),
        ({"kind": "static", "key": "not a key"}, 422, "invalid-pix-key", "not a Pix key"),
        ({"kind": "dynamic"}, 422, "invalid-charge", "amount"),
        ({"kind": "static", "expires_in": 60}, 422, "invalid-charge", "expires_in"),
        ({"kind": "static", "txid": "A" * 26}, 422, "invalid-charge", "26 characters"),
        ({"kind": "dynamic", "amount": "1.00", "txid": "A" * 25}, 422, "invalid-charge", "26 to"),
        ({"kind": "static", "txid": "TAKEN1"}, 409, "txid-taken", "TAKEN1"),
        ({"kind": "static", "amount": "10000000000.00"}, 422, "invalid-br-code", "54 "),
        ({"kind": "static", "txid": "PEDIDO-42"}, 422, "validation-error", "txid"),
        ({"kind": "static", "txid": "A" * 36}, 422, "validation-error", "txid"),
        ({"kind": "dynamic", "amount": "1.00", "expires_in": 0}, 422, "validation-error", "exp"),
        ({"kind": "recurring"}, 422, "validation-error", "kind"),
    ]
    for amount in ("0", "-1.00", "1.005", '"10.00"', "1e-3", "true"):
        cases.append(({"kind": "static", "amount": amount}, 422, "validation-error", "amount"))
    for fields, status, code, said in cases:
        answer = await pix.post("/banking/pix/charges", ana, **{"key": key, **fields})
        assert said in problem(answer, status, code)["detail"], fields
    assert await count(engine, charges) == 1


async def test_a_charge_in_a_name_a_code_cannot_carry_is_refused_naming_the_field(
    pix: PixClient,
) -> None:
    tokyo = await pix.customer("東京")
    key = await pix.key(tokyo, await pix.account(tokyo))
    answer = await pix.post("/banking/pix/charges", tokyo, kind="static", key=key)
    assert problem(answer, 422, "invalid-br-code")["field"] == "59"


# --- payments ------------------------------------------------------------------------------


async def test_a_dynamic_charge_is_paid_once_by_another_customer_with_its_code(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer("Ana Lima"), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    charge = await pix.charge(ana, await pix.key(ana, anas), amount="30.25")
    paid = await pix.paid(bia, from_account_id=bias, br_code=charge["br_code"] + "\n")
    e2e = paid["end_to_end_id"]
    assert (paid["role"], paid["status"], paid["amount"], paid["refunded"]) == (
        "payer",
        "settled",
        D("30.25"),
        0,
    )
    assert paid["txid"] == charge["txid"]
    assert paid["payer"]["account"] == bias
    assert paid["payee"] == {
        "name": "Ana L.",
        "ispb": "99999999",
        "branch": "0001",
        "account": "****" + anas[-4:],
        "account_type": "CACC",
    }
    assert check_end_to_end_id(e2e, "99999999") == e2e  # E, the ISPB, the minute, 11 more
    assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (D("30.25"), D("69.75"))

    seen = data(await pix.http.get(f"/banking/pix/payments/{e2e}", headers=ana))
    assert (seen["role"], seen["payee"]["account"], seen["payer"]["name"]) == (
        "payee",
        anas,
        "Bia S.",
    )
    assert seen["payer"]["account"] == "****" + bias[-4:]
    status = data(await pix.http.get(f"/banking/pix/charges/{charge['txid']}", headers=ana))
    assert (status["status"], status["paid_by"]) == ("paid", e2e)

    carla = await pix.customer("Carla Dias")
    carlas = await pix.account(carla, deposit="100.00")
    again = await pix.pay(carla, from_account_id=carlas, br_code=charge["br_code"])
    problem(again, 409, "charge-already-paid")
    problem(await pix.http.get(f"/banking/pix/payments/{e2e}", headers=carla), 404, "not-found")
    assert await pix.posted(carla, carlas) == 100
    assert await journal_codes(engine) == ["deposit", "pix", "deposit"]
    events = await outbox_events(engine, messages.PIX_SETTLED)
    assert list(events) == [f"pix-settled-{e2e}"]
    assert events[f"pix-settled-{e2e}"] == {
        "v": 1,
        "end_to_end_id": e2e,
        "transfer_id": f"pix-{e2e}",
        "payer_account_id": bias,
        "payee_account_id": anas,
        "amount": 3025,
        "currency": "BRL",
        "key": charge["key"],
        "txid": charge["txid"],
        "at": paid["settled_at"],
    }
    await ledger_whole(engine)


async def test_a_static_code_pays_its_keys_account_any_number_of_times(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    key = await pix.key(ana, anas, "phone", key="+5561912345678")
    priced = await pix.charge(ana, key, "static", amount="10.00", txid="MESA7")
    first = await pix.paid(bia, from_account_id=bias, br_code=priced["br_code"])
    second = await pix.paid(bia, from_account_id=bias, br_code=priced["br_code"], amount="10.00")
    assert first["txid"] == second["txid"] == "MESA7"
    mismatch = await pix.pay(bia, from_account_id=bias, br_code=priced["br_code"], amount="9.99")
    assert "10.00" in problem(mismatch, 422, "amount-mismatch")["detail"]

    open_amount = await pix.charge(ana, key, "static")
    problem(
        await pix.pay(bia, from_account_id=bias, br_code=open_amount["br_code"]),
        422,
        "amount-required",
    )
    await pix.paid(bia, from_account_id=bias, br_code=open_amount["br_code"], amount="0.5")
    by_key = await pix.paid(bia, from_account_id=bias, key="+55 61 91234-5678", amount="1e1")
    assert (by_key["amount"], by_key["key"], by_key["txid"]) == (10, key, None)
    problem(await pix.pay(bia, from_account_id=bias, key=key), 422, "amount-required")
    typed = brcode.BrCode.static(key, "Anyone", "Recife", amount=123).encode()  # not a charge
    await pix.paid(bia, from_account_id=bias, br_code=typed)  # a key's code pays the key
    assert await pix.posted(ana, anas) == D("31.73")
    assert await count(engine, payments) == 5
    await ledger_whole(engine)


async def test_a_payment_to_an_unknown_or_deleted_key_or_to_the_same_account_is_refused(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana = await pix.customer()
    anas = await pix.account(ana, deposit="50.00")
    key = await pix.key(ana, anas)
    static = await pix.charge(ana, key, "static", amount="1.00")
    same = await pix.pay(ana, from_account_id=anas, br_code=static["br_code"])
    problem(same, 422, "accounts-must-be-different")
    mine = await pix.key(ana, await pix.account(ana))
    to_another = await pix.paid(ana, from_account_id=anas, key=mine, amount="1.00")
    assert to_another["role"] == "payer"  # from one of hers to another of hers: allowed
    assert (await pix.http.delete(f"/banking/pix/keys/{key}", headers=ana)).status_code == 200
    bia = await pix.customer("Bia Souza")
    bias = await pix.account(bia, deposit="10.00")
    for fields in (
        {"br_code": static["br_code"]},
        {"key": key, "amount": "1.00"},
        {"key": "nobody@example.com", "amount": "1.00"},
    ):
        problem(await pix.pay(bia, from_account_id=bias, **fields), 404, "not-found")
    assert await count(engine, payments) == 1  # hers to herself, before
    assert await pix.posted(bia, bias) == 10


async def test_tampered_and_foreign_codes_are_refused_naming_the_field(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="500.00")
    charge = await pix.charge(ana, await pix.key(ana, anas), amount="30.00")
    code = charge["br_code"]
    crc = code[-4:]
    flipped = "0" if crc[-1] != "0" else "1"
    location = charge["location"].rsplit("/", 1)[1]
    foreign = brcode.BrCode.dynamic("pix.otherbank.com/qr/v2/abc", "Loja", "Recife").encode()
    cases = [
        (code[:-1] + flipped, "invalid-br-code", "63"),  # the CRC changed
        (code.replace("30.00", "10.00"), "invalid-br-code", "63"),  # the amount, CRC left
        (code[:-10], "invalid-br-code", "62"),  # cut short: 62 says 7 characters, 5 follow
        (code.replace("5802BR", "5802US"), "invalid-br-code", "63"),
        (recoded(code, "5802BR", "5802US"), "invalid-br-code", "58"),
        (recoded(code, "5303986", "5303840"), "invalid-br-code", "53"),
        (recoded(code, "0014br.gov.bcb.pix", "0014br.gov.bcb.pex"), "invalid-br-code", "26.00"),
        ("not a code", "invalid-br-code", ""),
        (foreign, "unknown-charge", None),
        (recoded(code, location, "f" * 32), "unknown-charge", None),
        (recoded(code, "540530.00", "540510.00"), "amount-mismatch", None),
    ]
    for payload, error, field in cases:
        body = problem(await pix.pay(bia, from_account_id=bias, br_code=payload), 422, error)
        if field is not None:
            assert body.get("field", "") == field, (payload, body)
            assert body["detail"].startswith(field), body
    for fields, code_said in [
        ({"br_code": code, "key": charge["key"], "amount": "30.00"}, "one of the two"),
        ({}, "one of the two"),
    ]:
        answer = await pix.pay(bia, from_account_id=bias, **fields)
        assert code_said in problem(answer, 422, "invalid-payment")["detail"]
    problem(await pix.pay(bia, from_account_id=bias, br_code=""), 422, "validation-error")
    problem(
        await pix.pay(bia, from_account_id=bias, br_code=code, amount="29.99"),
        422,
        "amount-mismatch",
    )
    assert await count(engine, payments) == 0
    assert await pix.posted(bia, bias) == 500
    await pix.paid(bia, from_account_id=bias, br_code=code, amount="30.00")  # the real one


async def test_an_expired_charge_is_refused(
    pix: PixClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    charge = await pix.charge(ana, await pix.key(ana, anas), amount="5.00", expires_in=60)
    later(monkeypatch, seconds=61)
    expired = await pix.pay(bia, from_account_id=bias, br_code=charge["br_code"])
    assert charge["txid"] in problem(expired, 422, "charge-expired")["detail"]
    read = await pix.http.get(f"/banking/pix/charges/{charge['txid']}", headers=ana)
    assert read.json()["status"] == "expired"
    monkeypatch.undo()
    assert await count(engine, payments) == 0
    await pix.paid(bia, from_account_id=bias, br_code=charge["br_code"])  # not yet, really


async def test_an_end_to_end_id_is_one_payment_whatever_is_sent_again(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    key = await pix.key(ana, anas)
    first = await pix.pay(bia, from_account_id=bias, key=key, amount="10.00", end_to_end_id=E2E)
    assert first.status_code == 201, first.text
    assert first.json()["end_to_end_id"] == E2E
    again = await pix.pay(bia, from_account_id=bias, key=key, amount="10.0", end_to_end_id=E2E)
    assert (again.status_code, again.json()) == (201, first.json())
    other_account = await pix.account(bia, deposit="10.00")
    carla = await pix.customer("Carla Dias")
    carlas = await pix.account(carla, deposit="10.00")
    for who, fields in [
        (bia, {"from_account_id": bias, "key": key, "amount": "10.01"}),
        (bia, {"from_account_id": other_account, "key": key, "amount": "10.00"}),
        (bia, {"from_account_id": bias, "key": await pix.key(ana, anas), "amount": "10.00"}),
        (carla, {"from_account_id": carlas, "key": key, "amount": "10.00"}),
    ]:
        reused = await pix.pay(who, end_to_end_id=E2E, **fields)
        problem(reused, 409, "end-to-end-id-reused")
    assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (10, 90)
    assert await count(engine, payments) == 1
    assert len(await outbox_events(engine, messages.PIX_SETTLED)) == 1
    await ledger_whole(engine)


async def test_what_gets_past_the_checks_is_stopped_by_the_unique_indexes(
    pix: PixClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payment whose checks were passed as if the charge were unpaid, or its end-to-end id
    unused, or a refund as if its return id were (a writer without the lock), fails on the
    unique index, rolls back whole, and is judged again: nothing moves twice."""
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    key = await pix.key(ana, anas)
    charge = await pix.charge(ana, key, amount="10.00")
    await pix.paid(bia, from_account_id=bias, br_code=charge["br_code"])
    first = await pix.paid(bia, from_account_id=bias, key=key, amount="5.00", end_to_end_id=E2E)
    blind = {"calls": 0}

    def once_blind(real: Any, field: str) -> Any:
        async def looked_up(*args: Any) -> Any:
            row = await real(*args)
            blind["calls"] += 1
            if row is None or blind["calls"] > 1:
                return row
            return SimpleNamespace(**{**row._mapping, field: None})  # as if not there

        return looked_up

    payments_store = "paycore.banking.pix.payments.store"
    monkeypatch.setattr(f"{payments_store}.charge_at", once_blind(store.charge_at, "paid_by"))
    again = await pix.pay(bia, from_account_id=bias, br_code=charge["br_code"])
    problem(again, 409, "charge-already-paid")
    assert blind["calls"] == 2  # blind once, then judged again

    monkeypatch.undo()
    blind["calls"] = 0
    real_find = store.find_payment

    async def find_blind(*args: Any) -> Any:
        blind["calls"] += 1
        return None if blind["calls"] == 1 else await real_find(*args)

    monkeypatch.setattr(f"{payments_store}.find_payment", find_blind)
    replay = await pix.pay(bia, from_account_id=bias, key=key, amount="5.00", end_to_end_id=E2E)
    assert (replay.status_code, data(replay)) == (201, first)
    assert blind["calls"] == 3  # blind once, then judged again, then read for the answer
    assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (15, 85)

    monkeypatch.undo()
    rid = "D99999999202612061830abcDEF12345"
    refunded = await pix.refund(ana, E2E, amount="1.00", id=rid)
    assert refunded.status_code == 201, refunded.text
    real_refund, blind["calls"] = store.find_refund, 0

    async def refund_blind(*args: Any) -> Any:
        blind["calls"] += 1
        return None if blind["calls"] == 1 else await real_refund(*args)

    monkeypatch.setattr(f"{payments_store}.find_refund", refund_blind)
    again = await pix.refund(ana, E2E, amount="1.00", id=rid)
    assert (again.status_code, again.json()) == (201, refunded.json())
    assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (14, 86)
    assert await journal_codes(engine) == ["deposit", "pix", "pix", "pix-refund"]
    assert len(await outbox_events(engine, messages.PIX_SETTLED)) == 2
    assert len(await outbox_events(engine, messages.PIX_REFUNDED)) == 1
    await ledger_whole(engine)


@pytest.mark.parametrize(
    ("e2e", "said"),
    [
        ("E99999999202612061830abcDEF1234", "31 characters"),
        ("E99999999202612061830abcDEF123456", "33 characters"),
        ("D99999999202612061830abcDEF12345", "starts with 'D'"),
        ("E12345678202612061830abcDEF12345", "ISPB '12345678'"),
        ("E99999999202613061830abcDEF12345", "yyyyMMddHHmm"),
        ("E99999999202612061860abcDEF12345", "yyyyMMddHHmm"),
        ("E9999999920261206183OabcDEF12345", "yyyyMMddHHmm"),
        ("E99999999202612061830abc-EF12345", "letters and digits"),
    ],
)
async def test_a_bad_end_to_end_id_is_refused_naming_what_is_wrong(
    pix: PixClient, engine: AsyncEngine, e2e: str, said: str
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    key = await pix.key(ana, await pix.account(ana))
    bias = await pix.account(bia, deposit="10.00")
    answer = await pix.pay(bia, from_account_id=bias, key=key, amount="1.00", end_to_end_id=e2e)
    assert said in problem(answer, 422, "invalid-end-to-end-id")["detail"]
    path = f"/banking/pix/payments/{e2e}"
    assert (await pix.http.get(path, headers=bia)).status_code in (404, 422)
    assert await count(engine, payments) == 0


@pytest.mark.parametrize(
    "amount",
    ["0", "0.00", "-1", "-0.01", "1.005", "0.001", '"10"', '"10.00"', "true", "1e-3",
     "10000000000000.01", "[1]", "{}"],
)  # fmt: skip
async def test_a_bad_amount_is_refused_and_nothing_moves(
    pix: PixClient, engine: AsyncEngine, amount: str
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas = await pix.account(ana)
    key = await pix.key(ana, anas)
    bias = await pix.account(bia, deposit="100.00")
    answer = await pix.pay(bia, from_account_id=bias, key=key, amount=amount)
    assert problem(answer, 422, "validation-error")["errors"][0]["loc"] == ["body", "amount"]
    paid = await pix.paid(bia, from_account_id=bias, key=key, amount="20.00")
    refund = await pix.refund(ana, paid["end_to_end_id"], amount=amount)
    problem(refund, 422, "validation-error")
    assert await count(engine, payments) == 1
    assert await count(engine, refunds) == 0
    assert await pix.posted(bia, bias) == 80


async def test_a_payment_the_ledger_refuses_is_answered_with_its_reason(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="10.00")
    charge = await pix.charge(ana, await pix.key(ana, anas), amount="10.01")
    short = await pix.pay(bia, from_account_id=bias, br_code=charge["br_code"])
    problem(short, 422, "insufficient-funds")
    problem(await pix.pay(bia, from_account_id=anas, br_code=charge["br_code"]), 404, "not-found")
    problem(
        await pix.pay(bia, from_account_id=str(uuid7()), br_code=charge["br_code"]),
        404,
        "not-found",
    )
    problem(await pix.pay({}, from_account_id=bias, br_code=charge["br_code"]), 401, "unauthorized")
    read = await pix.http.get(f"/banking/pix/charges/{charge['txid']}", headers=ana)
    assert read.json()["status"] == "active"  # still to be paid
    assert await count(engine, payments) == 0
    assert await journal_codes(engine) == ["deposit"]


# --- refunds -------------------------------------------------------------------------------


async def test_the_payee_refunds_a_payment_in_parts_up_to_what_is_left(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    paid = await pix.paid(bia, from_account_id=bias, key=await pix.key(ana, anas), amount="40.00")
    e2e = paid["end_to_end_id"]
    part = await pix.refund(ana, e2e, amount="15.50")
    assert part.status_code == 201, part.text
    returned = data(part)
    assert returned["id"].startswith("D99999999")
    assert len(returned["id"]) == 32
    assert (returned["amount"], returned["end_to_end_id"]) == (D("15.50"), e2e)
    over = await pix.refund(ana, e2e, amount="24.51")
    assert "24.50" in problem(over, 422, "refund-exceeds-payment")["detail"]
    problem(await pix.refund(bia, e2e, amount="1.00"), 403, "not-the-payee")
    carla = await pix.customer("Carla Dias")
    problem(await pix.refund(carla, e2e, amount="1.00"), 404, "not-found")
    problem(await pix.refund(ana, "E99999999202612061830zzzzzzzzzzz"), 404, "not-found")
    problem(await pix.refund(ana, "not-an-e2e"), 422, "validation-error")
    rest = data(await pix.refund(ana, e2e))  # all that is left
    assert rest["amount"] == D("24.50")
    problem(await pix.refund(ana, e2e, amount="0.01"), 422, "refund-exceeds-payment")

    seen = data(await pix.http.get(f"/banking/pix/payments/{e2e}", headers=bia))
    assert (seen["status"], seen["refunded"]) == ("refunded", 40)
    for who in (ana, bia):
        listed = data(await pix.http.get(f"/banking/pix/payments/{e2e}/refunds", headers=who))
        assert [r["amount"] for r in listed["data"]] == [D("15.50"), D("24.50")]
        assert (listed["amount"], listed["refunded"]) == (40, 40)
    problem(
        await pix.http.get(f"/banking/pix/payments/{e2e}/refunds", headers=carla), 404, "not-found"
    )
    assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (0, 100)
    assert await journal_codes(engine) == ["deposit", "pix", "pix-refund", "pix-refund"]
    events = await outbox_events(engine, messages.PIX_REFUNDED)
    assert [(e["amount"], e["refunded"]) for e in events.values()] == [(1550, 1550), (2450, 4000)]
    assert list(events) == [f"pix-refunded-{returned['id']}", f"pix-refunded-{rest['id']}"]
    await ledger_whole(engine)


async def test_a_return_id_is_one_refund_and_bad_ones_are_refused(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    key = await pix.key(ana, anas)
    e2e = (await pix.paid(bia, from_account_id=bias, key=key, amount="40.00"))["end_to_end_id"]
    other = (await pix.paid(bia, from_account_id=bias, key=key, amount="5.00"))["end_to_end_id"]
    rid = "D99999999202612061830abcDEF12345"
    first = await pix.refund(ana, e2e, amount="10.00", id=rid)
    assert first.status_code == 201, first.text
    again = await pix.refund(ana, e2e, amount="10.00", id=rid)
    assert (again.status_code, again.json()) == (201, first.json())
    problem(await pix.refund(ana, e2e, amount="10.01", id=rid), 409, "return-id-reused")
    problem(await pix.refund(ana, other, amount="10.00", id=rid), 409, "return-id-reused")
    for bad, said in [
        ("E99999999202612061830abcDEF12345", "starts with 'E'"),
        ("D99999999202612061830abcDEF1234", "31 characters"),
        ("D11111111202612061830abcDEF12345", "ISPB"),
    ]:
        answer = await pix.refund(ana, e2e, amount="1.00", id=bad)
        assert said in problem(answer, 422, "invalid-return-id")["detail"]
    assert await count(engine, refunds) == 1
    assert await pix.posted(ana, anas) == 35


async def test_a_refund_the_payees_balance_cannot_cover_is_refused(
    pix: PixClient, engine: AsyncEngine
) -> None:
    ana, bia = await pix.customer(), await pix.customer("Bia Souza")
    anas, bias = await pix.account(ana), await pix.account(bia, deposit="100.00")
    paid = await pix.paid(bia, from_account_id=bias, key=await pix.key(ana, anas), amount="40.00")
    await pix.http.post(f"/banking/accounts/{anas}/withdrawals", json={"amount": 30}, headers=ana)
    problem(await pix.refund(ana, paid["end_to_end_id"]), 422, "insufficient-funds")
    await pix.refund(ana, paid["end_to_end_id"], amount="10.00")
    assert (await pix.posted(ana, anas), await pix.posted(bia, bias)) == (0, 70)
    await ledger_whole(engine)
