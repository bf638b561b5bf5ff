"""Fulfillment order simulator: realistic valid orders, and orders with exactly one defect.

Valid orders follow every rule of :mod:`paycore.fulfillment.domain` (one track number for the
order and its items, ``goods_total`` the sum of the items' ``total_price``, ``amount`` =
``goods_total + delivery_cost + custom_fee``). An invalid order is a valid one broken in one
place, chosen at random among several variants of the requested defect kind, so that
the decoder (``messages.decode``) refuses it with exactly that kind.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from paycore.fulfillment.domain import DEFECT_KINDS, MAX_ITEMS

Json = dict[str, Any]
Breaker = Callable[[random.Random, Json], bytes]

# --- realistic material ----------------------------------------------------------------------

_PEOPLE = (  # (name, e-mail login)
    ("Иван Петров", "ivan.petrov"),
    ("Анна Смирнова", "anna.smirnova"),
    ("Дмитрий Соколов", "d.sokolov"),
    ("Мария Кузнецова", "maria.kuz"),
    ("Алексей Попов", "alexey.popov"),
    ("Ольга Васильева", "olga.v"),
    ("Test Testov", "test"),
    ("Sergey Ivanov", "sivanov"),
    ("Natalia Orlova", "n.orlova"),
    ("John Smith", "john.smith"),
)
_MAIL_DOMAINS = ("gmail.com", "mail.ru", "yandex.ru", "bk.ru", "outlook.com")
_PLACES = (  # (city, region, zip prefix)
    ("Москва", "Москва", "101"),
    ("Санкт-Петербург", "Ленинградская область", "190"),
    ("Казань", "Республика Татарстан", "420"),
    ("Новосибирск", "Новосибирская область", "630"),
    ("Екатеринбург", "Свердловская область", "620"),
    ("Краснодар", "Краснодарский край", "350"),
    ("Kiryat Mozkin", "Kraiot", "263"),
    ("Minsk", "", "220"),
)
_STREETS = ("ул. Ленина", "пр. Мира", "ул. Гагарина", "ул. Садовая", "Ploshad Mira", "Nevsky pr.")
_PRODUCTS = (  # (name, brand, sizes)
    ("Mascaras", "Vivienne Sabo", ("0",)),
    ("Кроссовки беговые", "Nike", ("40", "41", "42", "43", "44")),
    ("Футболка хлопковая", "Gloria Jeans", ("S", "M", "L", "XL")),
    ("Смартфон Redmi Note 12", "Xiaomi", ("0",)),
    ("Наушники беспроводные", "JBL", ("0",)),
    ("Кружка керамическая", "", ("0",)),
    ("Платье летнее", "Zarina", ("42", "44", "46", "48")),
    ("Книга «Мастер и Маргарита»", "АСТ", ("0",)),
    ("Backpack", "Mark Ryden", ("0",)),
)
_BANKS = ("alpha", "sber", "tinkoff", "vtb", "gazprombank")
_DELIVERY_SERVICES = ("meest", "cdek", "wb", "boxberry", "pochta")
_SALES = (0, 0, 5, 10, 15, 20, 25, 30, 40, 50, 70)
_DELIVERY_COSTS = (0, 0, 99, 199, 300, 1500)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_FIRST_PAYMENT = 1_609_459_200  # 2021-01-01T00:00:00Z
_LAST_PAYMENT = 1_767_225_599  # 2025-12-31T23:59:59Z


def _order_uid(rng: random.Random, n: int) -> str:
    """19 lower-case hex digits + "wb"; the first 8 are a bijection of n: unique for n < 2**32."""
    return f"{n * 0x9E3779B1 % 2**32:08x}{rng.getrandbits(44):011x}wb"


def _track_number(rng: random.Random) -> str:
    return "WBILM" + "".join(rng.choices(_ALNUM, k=9))


def _delivery(rng: random.Random) -> Json:
    name, login = rng.choice(_PEOPLE)
    city, region, zip_prefix = rng.choice(_PLACES)
    return {
        "name": name,
        "phone": "+7" + "".join(rng.choices("0123456789", k=10)),
        "zip": zip_prefix + f"{rng.randrange(1000):03d}",
        "city": city,
        "address": f"{rng.choice(_STREETS)} {rng.randint(1, 120)}",
        "region": region,
        "email": f"{login}{rng.randint(1, 999)}@{rng.choice(_MAIL_DOMAINS)}",
    }


def _item(rng: random.Random, track_number: str) -> Json:
    name, brand, sizes = rng.choice(_PRODUCTS)
    price, sale = rng.randint(100, 20_000), rng.choice(_SALES)
    return {
        "chrt_id": rng.randint(1_000_000, 99_999_999),
        "track_number": track_number,
        "price": price,
        "rid": f"{rng.getrandbits(68):017x}wb",
        "name": name,
        "sale": sale,
        "size": rng.choice(sizes),
        "total_price": price * (100 - sale) // 100,
        "nm_id": rng.randint(1_000_000, 999_999_999),
        "brand": brand,
        "status": rng.choice((202, 202, 202, 200, 201)),
    }


def _payment(rng: random.Random, order_uid: str, items: list[Json], paid_at: int) -> Json:
    goods_total = sum(item["total_price"] for item in items)
    delivery_cost = rng.choice(_DELIVERY_COSTS)
    custom_fee = rng.choice((0, 0, 0, rng.randint(1, 500)))
    return {
        "transaction": order_uid,
        "request_id": rng.choice(("", "", f"{rng.getrandbits(64):016x}")),
        "currency": rng.choice(("RUB", "RUB", "RUB", "USD")),
        "provider": rng.choice(("wbpay", "wbpay", "sbp")),
        "amount": goods_total + delivery_cost + custom_fee,
        "payment_dt": paid_at,
        "bank": rng.choice(_BANKS),
        "delivery_cost": delivery_cost,
        "goods_total": goods_total,
        "custom_fee": custom_fee,
    }


def valid_order(rng: random.Random, n: int) -> Json:
    """A realistic order satisfying every rule; its order_uid is unique for each n < 2**32."""
    order_uid, track_number = _order_uid(rng, n), _track_number(rng)
    items = [_item(rng, track_number) for _ in range(rng.randint(1, 5))]
    paid_at = rng.randint(_FIRST_PAYMENT, _LAST_PAYMENT)
    created = datetime.fromtimestamp(paid_at + rng.randint(0, 60), UTC)
    return {
        "order_uid": order_uid,
        "track_number": track_number,
        "entry": "WBIL",
        "delivery": _delivery(rng),
        "payment": _payment(rng, order_uid, items, paid_at),
        "items": items,
        "locale": rng.choice(("ru", "ru", "en")),
        "internal_signature": "",
        "customer_id": f"c{rng.getrandbits(32):08x}",
        "delivery_service": rng.choice(_DELIVERY_SERVICES),
        "shardkey": str(rng.randint(0, 9)),
        "sm_id": rng.randint(1, 100),
        "date_created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "oof_shard": str(rng.randint(1, 2)),
    }


# --- breaking an order -----------------------------------------------------------------------


def _dump(value: object) -> bytes:
    """UTF-8 JSON, non-ASCII text as it is (not \\u escapes)."""
    return json.dumps(value, ensure_ascii=False).encode()


def _in_place(mutate: Callable[[random.Random, Json], None]) -> Breaker:
    def breaker(rng: random.Random, order: Json) -> bytes:
        mutate(rng, order)
        return _dump(order)

    return breaker


def _some_object(rng: random.Random, order: Json) -> Json:
    """The order itself, its delivery, its payment or one of its items."""
    return rng.choice((order, order["delivery"], order["payment"], rng.choice(order["items"])))


def _some_item(rng: random.Random, order: Json) -> Json:
    item: Json = rng.choice(order["items"])
    return item


def _rebalance(order: Json) -> None:
    """Recompute goods_total and amount from the items, so only the intended defect remains."""
    payment = order["payment"]
    payment["goods_total"] = sum(item["total_price"] for item in order["items"])
    payment["amount"] = payment["goods_total"] + payment["delivery_cost"] + payment["custom_fee"]


# not-json


def _truncated(rng: random.Random, order: Json) -> bytes:
    body = _dump(order)
    return body[: rng.randrange(len(body))]  # a strict prefix of an object is never JSON


def _not_utf8(rng: random.Random, order: Json) -> bytes:
    body = _dump(order)
    cut = rng.randrange(len(body))
    return body[:cut] + rng.choice((b"\xff", b"\xfe", b"\xc3\x28", b"\x80")) + body[cut:]


def _utf16(rng: random.Random, order: Json) -> bytes:
    return json.dumps(order, ensure_ascii=False).encode(rng.choice(("utf-16", "utf-32")))


def _python_repr(rng: random.Random, order: Json) -> bytes:
    return repr(order).encode()  # single quotes


def _nan_amount(rng: random.Random, order: Json) -> bytes:
    order["payment"]["amount"] = rng.choice((float("nan"), float("inf")))
    return json.dumps(order).encode()  # NaN / Infinity: accepted by Python, not JSON


def _lone_surrogate(rng: random.Random, order: Json) -> bytes:
    target = rng.choice((order["delivery"], _some_item(rng, order)))
    target["name"] = target["name"][:3] + "\ud83d" + target["name"][3:]  # half of an emoji
    return json.dumps(order).encode()  # escaped: \ud83d, not a character, so not JSON text


def _garbage(rng: random.Random, order: Json) -> bytes:
    texts = (b"", b"   ", b"hello", b"<order/>", b"order_uid=" + order["order_uid"].encode())
    return rng.choice((*texts, b"\x80" + rng.randbytes(rng.randint(0, 64))))


# not-an-object


def _not_an_object(rng: random.Random, order: Json) -> bytes:
    number = rng.randint(-(10**6), 10**6)
    values: tuple[object, ...] = ([order], [], number, order["order_uid"], None, True)
    if rng.random() < 0.25:
        return _dump(json.dumps(order, ensure_ascii=False))  # encoded twice: a JSON string
    return _dump(rng.choice(values))


# missing-field / unknown-field


def _drop_field(rng: random.Random, order: Json) -> None:
    target = _some_object(rng, order)
    del target[rng.choice(list(target))]


_EXTRA_FIELDS = ("comment", "discount", "OrderID", "orderUid", "id", "gift_wrap", "quantity")


def _add_field(rng: random.Random, order: Json) -> None:
    target = _some_object(rng, order)
    target[rng.choice(_EXTRA_FIELDS)] = rng.choice(("", "x", 1, None, {}, []))


# wrong-type


def _wrong_value(rng: random.Random, value: Any) -> object:
    if isinstance(value, int):
        return rng.choice((str(value), float(value), value % 2 == 0, None, [value]))
    if isinstance(value, str):
        return rng.choice((rng.randint(0, 99), None, [value], {"value": value}, False))
    if isinstance(value, dict):
        return rng.choice((list(value.values()), json.dumps(value, ensure_ascii=False), None))
    return rng.choice((value[0], None, "items"))  # items: one object instead of an array


def _retype_field(rng: random.Random, order: Json) -> None:
    target = _some_object(rng, order)
    name = rng.choice(list(target))
    target[name] = _wrong_value(rng, target[name])


def _retype_item(rng: random.Random, order: Json) -> None:
    items = order["items"]
    index = rng.randrange(len(items))
    items[index] = rng.choice((json.dumps(items[index], ensure_ascii=False), None, 42))


# bad-format

_BAD_VALUES: dict[tuple[str, str], tuple[str, ...]] = {  # (object, field) -> malformed values
    ("", "order_uid"): ("b563 feb7", "заказ-1", "x" * 65, "uid/42", "a.b"),
    ("", "date_created"): ("2021-11-26T06:22:19", "26.11.2021 06:22", "2021-02-30T10:00:00Z"),
    ("", "locale"): ("english", "e", "r1", "ru_RU_x"),
    ("delivery", "phone"): ("89161234567", "+7 916 123-45-67", "+7123", "+7" + "1" * 16),
    ("delivery", "email"): ("test.gmail.com", "test@gmail", "te st@gmail.com", "@mail.ru"),
    ("payment", "currency"): ("rub", "RUBL", "₽", "US", "usd"),
    ("", "customer_id"): ("", " "),
    ("", "delivery_service"): ("",),
    ("delivery", "name"): ("", "  "),
    ("delivery", "city"): ("",),
    ("payment", "provider"): ("",),
    ("payment", "transaction"): ("",),
    ("items", "name"): ("", "\t"),
    ("items", "rid"): ("",),
}
_BAD_SPOTS = tuple(_BAD_VALUES)


def _reformat_field(rng: random.Random, order: Json) -> None:
    where, name = rng.choice(_BAD_SPOTS)
    target = order if not where else _some_item(rng, order) if where == "items" else order[where]
    target[name] = rng.choice(_BAD_VALUES[where, name])


def _unstorable_text(rng: random.Random, order: Json) -> None:
    target = rng.choice((order["delivery"], _some_item(rng, order)))
    target["name"] = (
        target["name"][:3] + "\x00" + target["name"][3:]
    )  # NUL: no text column takes it


# out-of-range


def _negative_price(rng: random.Random, order: Json) -> None:
    item = _some_item(rng, order)
    item["price"] = -item["price"]


def _bad_sale(rng: random.Random, order: Json) -> None:
    _some_item(rng, order)["sale"] = rng.choice((101, 150, -10))


def _bad_payment_dt(rng: random.Random, order: Json) -> None:
    order["payment"]["payment_dt"] = rng.choice((0, -order["payment"]["payment_dt"]))


def _negative_total(rng: random.Random, order: Json) -> None:
    item = _some_item(rng, order)
    item["total_price"] = -item["total_price"] - 1
    _rebalance(order)


def _negative_delivery_cost(rng: random.Random, order: Json) -> None:
    order["payment"]["delivery_cost"] = -rng.randint(1, 1500)
    _rebalance(order)


def _huge_or_negative_id(rng: random.Random, order: Json) -> None:
    target, name = rng.choice(((order, "sm_id"), (_some_item(rng, order), "nm_id")))
    target[name] = rng.choice((2**63 + rng.randrange(1000), 2**64, -1))


def _item_count(rng: random.Random, order: Json) -> None:
    items = order["items"]
    order["items"] = rng.choice(([], items * (MAX_ITEMS // len(items) + 1)))


# inconsistent


def _foreign_track(rng: random.Random, order: Json) -> None:
    track = order["track_number"]
    other = rng.choice([char for char in _ALNUM if char != track[-1]])
    _some_item(rng, order)["track_number"] = track[:-1] + other


def _inflate(rng: random.Random, order: Json) -> None:
    delta, payment = rng.randint(1, 1000), order["payment"]
    if rng.random() < 0.5:
        payment["goods_total"] += delta
        payment["amount"] += delta  # so only goods_total is wrong
    else:
        name = rng.choice(("amount", "delivery_cost", "custom_fee"))
        payment[name] += delta


def _reprice_item(rng: random.Random, order: Json) -> None:
    _some_item(rng, order)["total_price"] += rng.randint(1, 1000)


_BREAKERS: dict[str, tuple[Breaker, ...]] = {
    "not-json": (
        _truncated,
        _not_utf8,
        _utf16,
        _python_repr,
        _nan_amount,
        _lone_surrogate,
        _garbage,
    ),
    "not-an-object": (_not_an_object,),
    "missing-field": (_in_place(_drop_field),),
    "unknown-field": (_in_place(_add_field),),
    "wrong-type": (_in_place(_retype_field), _in_place(_retype_item)),
    "bad-format": (_in_place(_reformat_field), _in_place(_unstorable_text)),
    "out-of-range": tuple(
        _in_place(mutate)
        for mutate in (
            _negative_price,
            _bad_sale,
            _bad_payment_dt,
            _negative_total,
            _negative_delivery_cost,
            _huge_or_negative_id,
            _item_count,
        )
    ),
    "inconsistent": tuple(_in_place(m) for m in (_foreign_track, _inflate, _reprice_item)),
}


def invalid_order(rng: random.Random, n: int, kind: str) -> bytes:
    """The body of order n with exactly one defect of ``kind`` (one of ``DEFECT_KINDS``)."""
    if kind not in _BREAKERS:
        raise ValueError(f"unknown defect kind {kind!r}; expected one of {DEFECT_KINDS}")
    return rng.choice(_BREAKERS[kind])(rng, valid_order(rng, n))


def generate(count: int, bad_rate: float, seed: int = 0) -> Iterator[tuple[bytes, str | None]]:
    """``count`` message bodies, about ``bad_rate`` of them invalid, deterministic for a seed.

    Yields ``(body, kind)``: ``kind`` is None for a valid order, else the defect kind; invalid
    messages cycle through every kind of ``DEFECT_KINDS`` in turn.
    """
    if not 0.0 <= bad_rate <= 1.0:
        raise ValueError(f"bad_rate must be between 0 and 1, not {bad_rate}")
    rng = random.Random(seed)
    bad = 0
    for n in range(count):
        if rng.random() < bad_rate:
            kind = DEFECT_KINDS[bad % len(DEFECT_KINDS)]
            bad += 1
            yield invalid_order(rng, n, kind), kind
        else:
            yield json.dumps(valid_order(rng, n), ensure_ascii=False).encode(), None
