"""Fulfillment orders: the seed's sample, every validation rule, and the order simulator."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from typing import Any

import pytest

from paycore.fulfillment.domain import (
    DEFECT_KINDS,
    InvalidOrder,
    Order,
    order_to_dict,
)
from paycore.fulfillment.generator import generate, invalid_order, valid_order
from paycore.fulfillment.messages import decode
from paycore.platform.errors import DomainError

SAMPLE = b"""{
  "order_uid": "b563feb7b2b84b6test",
  "track_number": "WBILMTESTTRACK",
  "entry": "WBIL",
  "delivery": {
    "name": "Test Testov", "phone": "+9720000000", "zip": "2639809", "city": "Kiryat Mozkin",
    "address": "Ploshad Mira 15", "region": "Kraiot", "email": "test@gmail.com"
  },
  "payment": {
    "transaction": "b563feb7b2b84b6test", "request_id": "", "currency": "USD",
    "provider": "wbpay", "amount": 1817, "payment_dt": 1637907727, "bank": "alpha",
    "delivery_cost": 1500, "goods_total": 317, "custom_fee": 0
  },
  "items": [
    {
      "chrt_id": 9934930, "track_number": "WBILMTESTTRACK", "price": 453,
      "rid": "ab4219087a764ae0btest", "name": "Mascaras", "sale": 30, "size": "0",
      "total_price": 317, "nm_id": 2389212, "brand": "Vivienne Sabo", "status": 202
    }
  ],
  "locale": "en",
  "internal_signature": "",
  "customer_id": "test",
  "delivery_service": "meest",
  "shardkey": "9",
  "sm_id": 99,
  "date_created": "2021-11-26T06:22:19Z",
  "oof_shard": "1"
}"""

_STEP = re.compile(r"(\w+)(?:\[(\d+)\])?")


def decoded(data: object) -> Order:
    """An order given as its decoded JSON value, through the wire format's decoder."""
    return decode(json.dumps(data).encode())


def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE)
    return data


def _parent(data: dict[str, Any], path: str) -> tuple[Any, str | int]:
    """The container holding the last step of ``path`` ("items[0].sale") and that step's key."""
    node: Any = data
    key: str | int = ""
    for step in path.split("."):
        match = _STEP.fullmatch(step)
        assert match is not None
        if key != "":
            node = node[key]
        key = match[1]
        if match[2] is not None:
            node, key = node[key], int(match[2])
    return node, key


def with_value(path: str, value: object, data: dict[str, Any] | None = None) -> dict[str, Any]:
    data = sample() if data is None else data
    node, key = _parent(data, path)
    node[key] = value
    return data


def without(path: str) -> dict[str, Any]:
    data = sample()
    node, key = _parent(data, path)
    del node[key]
    return data


def refused(data: object) -> InvalidOrder:
    with pytest.raises(InvalidOrder) as caught:
        decoded(data)
    return caught.value


def assert_refused(data: object, kind: str, field: str) -> None:
    error = refused(data)
    assert (error.kind, error.field) == (kind, field), str(error)
    assert field in str(error)


# --- the seed's sample --------------------------------------------------------------------


def test_sample_validates() -> None:
    order = decode(SAMPLE)
    assert isinstance(order, Order)
    assert order.order_uid == "b563feb7b2b84b6test"
    assert order.payment.amount == 1817
    assert order.delivery.email == "test@gmail.com"
    assert len(order.items) == 1
    assert order.items[0].total_price == 317
    assert order.items[0].track_number == order.track_number == "WBILMTESTTRACK"


def test_sample_round_trips() -> None:
    order = decode(SAMPLE)
    back = order_to_dict(order)
    assert back == sample()
    assert list(back) == list(sample())  # same key order
    assert isinstance(back["items"], list)
    assert decoded(back) == order
    assert decode(json.dumps(back).encode()) == order


def test_defect_kinds_are_the_stable_codes() -> None:
    assert DEFECT_KINDS == (
        "not-json",
        "not-an-object",
        "missing-field",
        "unknown-field",
        "wrong-type",
        "bad-format",
        "out-of-range",
        "inconsistent",
    )


def test_invalid_order_is_a_domain_error_naming_the_field() -> None:
    error = refused(with_value("payment.amount", "1817"))
    assert isinstance(error, DomainError)
    assert (error.code, error.status) == ("validation-error", 422)
    assert (error.extra["kind"], error.extra["field"]) == ("wrong-type", "payment.amount")
    [detail] = error.extra["errors"]
    assert detail["loc"] == ["body", "payment", "amount"]
    assert detail["type"] == "wrong-type"
    assert str(error) == "payment.amount must be an integer, not a string"


# --- not-json / not-an-object -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        SAMPLE[:-1],  # truncated
        b"\xff" + SAMPLE,  # not UTF-8
        SAMPLE.decode().encode("utf-16"),
        SAMPLE.replace(b"1817", b"NaN"),
        SAMPLE.replace(b"1817", b"Infinity"),
        SAMPLE.replace(b'"locale": "en",', b'"locale": "en",,'),
        b"{'order_uid': 'x'}",
    ],
    ids=range(9),
)
def test_not_json(body: bytes) -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode(body)
    assert (caught.value.kind, caught.value.field) == ("not-json", "")


@pytest.mark.parametrize(
    "body",
    [b"[]", b"[{}]", b"42", b'"order"', b"null", b"true", b"[" * 100_000, b"1" * 5000],
)
def test_not_an_object(body: bytes) -> None:
    with pytest.raises(InvalidOrder) as caught:
        decode(body)
    assert (caught.value.kind, caught.value.field) == ("not-an-object", "")


# --- shape: missing, unknown, wrong type --------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "order_uid",
        "delivery",
        "items",
        "internal_signature",
        "oof_shard",
        "delivery.email",
        "delivery.zip",
        "payment.request_id",
        "payment.amount",
        "items[0].track_number",
        "items[0].brand",
        "items[0].status",
    ],
)
def test_every_field_is_required(path: str) -> None:
    assert_refused(without(path), "missing-field", path)


def test_missing_field_in_a_later_item() -> None:
    data = sample()
    data["items"].append(dict(data["items"][0]))
    del data["items"][1]["rid"]
    data["payment"]["goods_total"] = data["payment"]["amount"] = 0  # shape comes first
    assert_refused(data, "missing-field", "items[1].rid")


@pytest.mark.parametrize(
    "path", ["comment", "delivery.nickname", "payment.OrderID", "items[0].quantity"]
)
def test_unknown_fields_are_refused_at_every_level(path: str) -> None:
    assert_refused(with_value(path, "x"), "unknown-field", path)


def test_the_first_problem_met_in_the_body_is_the_one_reported() -> None:
    data = with_value("payment.Amount", 1817, without("payment.amount"))  # met before the end
    assert_refused(data, "unknown-field", "payment.Amount")
    data = with_value("delivery.zip", 1, with_value("payment.amount", "x"))  # delivery first
    assert_refused(data, "wrong-type", "delivery.zip")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("payment.amount", "1817"),
        ("payment.amount", 1817.0),
        ("payment.amount", True),
        ("payment.amount", None),
        ("items[0].sale", False),
        ("sm_id", "99"),
        ("shardkey", 9),
        ("delivery.name", None),
        ("delivery.phone", ["+9720000000"]),
        ("payment.request_id", 0),
        ("delivery", []),
        ("payment", "{}"),
        ("items", {}),
        ("items[0]", "Mascaras"),
    ],
)
def test_types_are_exact(path: str, value: object) -> None:
    assert_refused(with_value(path, value), "wrong-type", path)


def test_shape_is_checked_before_formats() -> None:
    data = with_value("delivery.email", "nope", with_value("payment.bank", 1))
    assert_refused(data, "wrong-type", "payment.bank")


# --- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "order_uid",
        "track_number",
        "entry",
        "locale",
        "customer_id",
        "delivery_service",
        "shardkey",
        "date_created",
        "oof_shard",
        "delivery.name",
        "delivery.phone",
        "delivery.city",
        "delivery.address",
        "delivery.email",
        "payment.transaction",
        "payment.currency",
        "payment.provider",
        "payment.bank",
        "items[0].track_number",
        "items[0].rid",
        "items[0].name",
        "items[0].size",
    ],
)
@pytest.mark.parametrize("blank", ["", "  "])
def test_strings_must_not_be_blank(path: str, blank: str) -> None:
    error = refused(with_value(path, blank))
    assert (error.kind, error.field) == ("bad-format", path)
    assert "must not be empty" in str(error)


@pytest.mark.parametrize(
    "path",
    [
        "internal_signature",
        "payment.request_id",
        "delivery.zip",
        "delivery.region",
        "items[0].brand",
    ],
)
def test_some_strings_may_be_empty(path: str) -> None:
    data = with_value(path, "")
    assert order_to_dict(decoded(data)) == data


@pytest.mark.parametrize("path", ["delivery.name", "internal_signature", "items[0].brand"])
def test_strings_must_be_storable(path: str) -> None:
    error = refused(with_value(path, "ab\x00"))
    assert (error.kind, error.field) == ("bad-format", path)
    assert "cannot be stored" in str(error)
    lone_surrogate = refused(with_value(path, "ab\ud83d"))  # not even valid JSON text
    assert lone_surrogate.kind == "not-json"


def test_a_whole_emoji_is_fine() -> None:
    order = decoded(with_value("delivery.name", "Тест 🙂"))
    assert order.delivery.name == "Тест 🙂"


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        ("order_uid", ["a", "A-z_09", "x" * 64], ["x" * 65, "b563 feb7", "заказ", "a.b", "a/b"]),
        ("locale", ["en", "ru", "ru-RU", "en_US"], ["e", "english", "r1", "1en", "ru-RU-x"]),
        (
            "date_created",
            ["2021-11-26T06:22:19Z", "2021-11-26T09:22:19+03:00", "2021-11-26T06:22:19.5Z"],
            ["2021-11-26T06:22:19", "2021-11-26", "26.11.2021", "2021-02-30T10:00:00Z", "now"],
        ),
        (
            "delivery.phone",
            ["+9720000000", "+79161234567", "+1234567", "+" + "9" * 15],
            ["89161234567", "+7 916 123-45-67", "+123456", "+" + "9" * 16, "+７９１６１２３４"],
        ),
        (
            "delivery.email",
            ["test@gmail.com", "a.b+c@mail.ru", "иван@почта.рф"],
            ["test.gmail.com", "test@gmail", "te st@gmail.com", "@mail.ru", "a@b@c.ru", "a@.ru"],
        ),
        ("payment.currency", ["RUB", "USD", "KZT"], ["rub", "RUBL", "US", "₽", "usd"]),
    ],
)
def test_formats(path: str, good: list[str], bad: list[str]) -> None:
    for value in good:
        decoded(with_value(path, value))
    for value in bad:
        error = refused(with_value(path, value))
        assert (error.kind, error.field) == ("bad-format", path), value


def test_email_length_is_bounded() -> None:
    assert_refused(
        with_value("delivery.email", "a" * 60 + "@" + "b" * 200 + ".ru"),
        "bad-format",
        "delivery.email",
    )


def test_formats_are_checked_before_ranges() -> None:
    data = with_value("payment.currency", "rub", with_value("items[0].sale", 101))
    assert_refused(data, "bad-format", "payment.currency")


# --- ranges -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("payment.amount", -1),
        ("payment.delivery_cost", -1500),
        ("payment.goods_total", -317),
        ("payment.custom_fee", -5),
        ("payment.payment_dt", 0),
        ("payment.payment_dt", -1637907727),
        ("items[0].price", -453),
        ("items[0].total_price", -1),
        ("items[0].sale", 101),
        ("items[0].sale", -1),
        ("items[0].chrt_id", 2**63),
        ("items[0].nm_id", -1),
        ("items[0].status", 2**64),
        ("sm_id", -99),
    ],
)
def test_ranges(path: str, value: int) -> None:
    assert_refused(with_value(path, value), "out-of-range", path)


@pytest.mark.parametrize(
    ("path", "value"), [("items[0].sale", 0), ("items[0].sale", 100), ("sm_id", 2**63 - 1)]
)
def test_range_bounds_are_inclusive(path: str, value: int) -> None:
    decoded(with_value(path, value))


def test_an_order_has_one_to_a_thousand_items() -> None:
    assert_refused(with_value("items", []), "out-of-range", "items")
    many = sample()
    many["items"] = many["items"] * 1000
    many["payment"]["goods_total"] = 317 * 1000
    many["payment"]["amount"] = 317 * 1000 + 1500
    assert len(decoded(many).items) == 1000
    many["items"].append(many["items"][0])
    assert_refused(many, "out-of-range", "items")


def test_ranges_are_checked_before_consistency() -> None:
    assert_refused(with_value("payment.delivery_cost", -1), "out-of-range", "payment.delivery_cost")


# --- consistency --------------------------------------------------------------------------


def test_items_share_the_order_track_number() -> None:
    data = sample()
    data["items"].append(dict(data["items"][0], track_number="WBILMOTHERTRACK"))
    data["payment"]["goods_total"], data["payment"]["amount"] = 634, 2134
    assert_refused(data, "inconsistent", "items[1].track_number")


def test_goods_total_is_the_sum_of_total_prices() -> None:
    data = with_value("payment.goods_total", 318)
    data["payment"]["amount"] = 1818  # amount still follows goods_total
    error = refused(data)
    assert (error.kind, error.field) == ("inconsistent", "payment.goods_total")
    assert "317" in str(error)


@pytest.mark.parametrize("path", ["payment.amount", "payment.delivery_cost", "payment.custom_fee"])
def test_amount_is_goods_plus_delivery_plus_fee(path: str) -> None:
    data = sample()
    node, key = _parent(data, path)
    node[key] += 1
    assert_refused(data, "inconsistent", "payment.amount")


def test_unchecked_relations_are_accepted() -> None:
    data = with_value("items[0].price", 10_000)  # total_price vs price and sale: not checked
    data["payment"]["transaction"] = "another-transaction"
    data["payment"]["payment_dt"] = 1  # long before date_created
    decoded(data)


def test_duplicate_keys_last_one_wins() -> None:
    body = SAMPLE.replace(b'"locale": "en"', b'"locale": "ru", "locale": "en"')
    assert decode(body) == decode(SAMPLE)


# --- the simulator ------------------------------------------------------------------------


def test_generated_messages_validate_or_fail_with_their_kind() -> None:
    kinds: Counter[str | None] = Counter()
    for body, kind in generate(2000, 0.3, seed=7):
        kinds[kind] += 1
        if kind is None:
            order = decode(body)
            assert decoded(order_to_dict(order)) == order
            assert order_to_dict(order) == json.loads(body)
        else:
            with pytest.raises(InvalidOrder) as caught:
                decode(body)
            assert caught.value.kind == kind, (str(caught.value), body[:300])
    assert set(kinds) == {None, *DEFECT_KINDS}
    assert 500 <= sum(kinds[kind] for kind in DEFECT_KINDS) <= 700  # about 30 %
    assert max(kinds[k] for k in DEFECT_KINDS) - min(kinds[k] for k in DEFECT_KINDS) <= 1


def test_generate_is_deterministic_and_order_uids_are_unique() -> None:
    first = list(generate(500, 0.3, seed=3))
    assert first == list(generate(500, 0.3, seed=3))
    assert first != list(generate(500, 0.3, seed=4))
    uids = [json.loads(body)["order_uid"] for body, kind in first if kind is None]
    assert len(uids) == len(set(uids)) > 300
    assert all(re.fullmatch(r"[0-9a-f]{19}wb", uid) for uid in uids)


def test_valid_orders_are_realistic() -> None:
    bodies = [body for body, _ in generate(200, 0.0, seed=1)]
    orders = [decode(body) for body in bodies]
    assert any("Москва".encode() in body for body in bodies)  # UTF-8, not \\u escapes
    assert {order.payment.currency for order in orders} == {"RUB", "USD"}
    assert {len(order.items) for order in orders} == {1, 2, 3, 4, 5}
    assert all(order.delivery.phone.startswith("+7") for order in orders)


def test_all_or_nothing_bad_rate() -> None:
    assert all(kind is None for _, kind in generate(50, 0.0))
    assert all(kind is not None for _, kind in generate(50, 1.0))
    with pytest.raises(ValueError, match="bad_rate"):
        next(generate(1, 1.5))


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_invalid_order_has_the_requested_defect(kind: str) -> None:
    rng = random.Random(11)
    for n in range(60):
        with pytest.raises(InvalidOrder) as caught:
            decode(invalid_order(rng, n, kind))
        assert caught.value.kind == kind


def test_not_json_bodies_include_non_utf8_ones() -> None:
    rng = random.Random(5)
    bodies = [invalid_order(rng, n, "not-json") for n in range(100)]
    assert any(not _is_utf8(body) for body in bodies)
    assert any(_is_utf8(body) for body in bodies)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_invalid_order_refuses_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown defect kind"):
        invalid_order(random.Random(0), 0, "typo")


def test_valid_order_is_valid() -> None:
    rng = random.Random(2)
    for n in range(100):
        decoded(valid_order(rng, n))


_SM_ID = b'"sm_id": 99'
_CUSTOMER = b'"customer_id": "test"'
_EDGE_BODIES = {  # where a JSON decoder other than the standard library's might differ
    "utf-8 BOM": b"\xef\xbb\xbf" + SAMPLE,
    "form feed as whitespace": SAMPLE.replace(b"{\n", b"{\x0c", 1),
    "no-break space as whitespace": SAMPLE.replace(b"{\n", "{\u00a0".encode(), 1),
    "5,000-digit integer": SAMPLE.replace(_SM_ID, b'"sm_id": ' + b"9" * 5000),
    "30-digit integer": SAMPLE.replace(_SM_ID, b'"sm_id": ' + b"9" * 30),
    "minus zero": SAMPLE.replace(_SM_ID, b'"sm_id": -0'),
    "exponent": SAMPLE.replace(_SM_ID, b'"sm_id": 1e2'),
    "huge float": SAMPLE.replace(_SM_ID, b'"sm_id": 1e400'),
    "leading zero": SAMPLE.replace(_SM_ID, b'"sm_id": 099'),
    "plus sign": SAMPLE.replace(_SM_ID, b'"sm_id": +99'),
    "NaN": SAMPLE.replace(_SM_ID, b'"sm_id": NaN'),
    "escaped NUL": SAMPLE.replace(_CUSTOMER, b'"customer_id": "te\\u0000st"'),
    "escaped lone surrogate": SAMPLE.replace(_CUSTOMER, b'"customer_id": "te\\ud800st"'),
    "surrogate as UTF-8 bytes": SAMPLE.replace(_CUSTOMER, b'"customer_id": "te\xed\xa0\x80st"'),
    "overlong UTF-8": SAMPLE.replace(_CUSTOMER, b'"customer_id": "te\xc0\xafst"'),
    "raw tab in a string": SAMPLE.replace(_CUSTOMER, b'"customer_id": "te\tst"'),
    "bad escape": SAMPLE.replace(_CUSTOMER, b'"customer_id": "te\\qst"'),
    "escaped key": SAMPLE.replace(b'"customer_id"', b'"customer\\u005fid"'),
    "duplicate key, good one last": SAMPLE.replace(_SM_ID, b'"sm_id": "x", "sm_id": 99'),
    "duplicate key, bad one last": SAMPLE.replace(_SM_ID, b'"sm_id": 99, "sm_id": "x"'),
    "trailing whitespace": SAMPLE + b"\n \t\r",
    "trailing garbage": SAMPLE + b"x",
    "no items": json.dumps(with_value("items", [])).encode(),
    "1,001 items": json.dumps(with_value("items", sample()["items"] * 1001)).encode(),
    "an item that is not an object": json.dumps(with_value("items", [1])).encode(),
}


_EDGE_VERDICTS: dict[str, tuple[str, str] | None] = {
    "utf-8 BOM": ("not-json", ""),
    "form feed as whitespace": ("not-json", ""),
    "no-break space as whitespace": ("not-json", ""),
    "5,000-digit integer": ("out-of-range", "sm_id"),
    "30-digit integer": ("out-of-range", "sm_id"),
    "minus zero": None,
    "exponent": ("wrong-type", "sm_id"),
    "huge float": ("wrong-type", "sm_id"),
    "leading zero": ("not-json", ""),
    "plus sign": ("not-json", ""),
    "NaN": ("not-json", ""),
    "escaped NUL": ("bad-format", "customer_id"),
    "escaped lone surrogate": ("not-json", ""),
    "surrogate as UTF-8 bytes": ("not-json", ""),
    "overlong UTF-8": ("not-json", ""),
    "raw tab in a string": ("not-json", ""),
    "bad escape": ("not-json", ""),
    "escaped key": None,
    "duplicate key, good one last": ("wrong-type", "sm_id"),  # every occurrence is checked
    "duplicate key, bad one last": ("wrong-type", "sm_id"),
    "trailing whitespace": None,
    "trailing garbage": ("not-json", ""),
    "no items": ("out-of-range", "items"),
    "1,001 items": ("out-of-range", "items"),
    "an item that is not an object": ("wrong-type", "items[0]"),
}


@pytest.mark.parametrize("name", _EDGE_BODIES)
def test_edge_cases_of_json_are_decided_as_the_rules_say(name: str) -> None:
    try:
        decode(_EDGE_BODIES[name])
        verdict = None
    except InvalidOrder as exc:
        verdict = (exc.kind, exc.field)
    assert verdict == _EDGE_VERDICTS[name]
