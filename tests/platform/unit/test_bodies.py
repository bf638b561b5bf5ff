"""The one reader of request bodies: media type, syntax, repeated keys, exact money, text."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from paycore.platform.web.bodies import (
    Cents,
    CentsOrZero,
    Input,
    read,
    schema_components,
    text,
)
from paycore.platform.web.problems import Problem

JSON = "application/json"


class Line(Input):
    name: Annotated[str, text(20)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class Basket(Input):
    owner: Annotated[str, text(20)]
    total: Cents
    lines: list[Line] = msgspec.field(default_factory=list)


def refused(body: bytes, content_type: str | None = JSON) -> Problem:
    with pytest.raises(Problem) as caught:
        read(Basket, body, content_type)
    return caught.value


def test_a_good_body_is_read_with_money_in_exact_cents() -> None:
    basket = read(
        Basket,
        b'{"owner": "Ana: the buyer", "total": 19.90, "lines": [{"name": "pen", "quantity": 2}]}',
        "application/json; charset=utf-8",
    )
    assert basket.owner == "Ana: the buyer"
    assert (basket.total, type(basket.total)) == (1990, Cents)
    assert basket.lines == [Line("pen", 2)]
    many_digits = read(Basket, b'{"owner": "a", "total": 9999999999999.99}', JSON)
    assert many_digits.total == 999999999999999  # a float would have rounded it


@pytest.mark.parametrize(
    "content_type", [None, "", "text/plain", "application/x-www-form-urlencoded", "json"]
)
def test_a_body_not_sent_as_json_is_a_415(content_type: str | None) -> None:
    problem = refused(b'{"owner": "a", "total": 1}', content_type)
    assert (problem.status, problem.code) == (415, "unsupported-media-type")


def test_json_media_types_are_accepted_in_utf8_only() -> None:
    body = b'{"owner": "a", "total": 1}'
    assert read(Basket, body, "application/problem+json").total == 100
    assert read(Basket, body, "Application/JSON").total == 100
    assert refused(body, "application/json; charset=latin-1").status == 415


@pytest.mark.parametrize(
    "body",
    [
        b"{nope",
        b"",
        b'{"owner": "a", "total": 1',
        b'{"owner": "\xff", "total": 1}',  # not UTF-8
        b'{"owner": "\\ud800", "total": 1}',  # a lone surrogate
        b'{"owner": "a", "total": NaN}',
        b"[" * 100_000 + b"]" * 100_000,  # nested too deeply
    ],
)
def test_malformed_json_is_a_400(body: bytes) -> None:
    problem = refused(body)
    assert (problem.status, problem.code) == (400, "malformed-json")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"owner": "a", "total": 1, "owner": "b"}', "owner"),
        (
            b'{"owner": "a", "total": 1, "lines": [{"name": "x", "name": "y", "quantity": 1}]}',
            "name",
        ),
        (b'{"owner": "a:b", "total": 1, "total": 2}', "total"),
        (b'{"own\\u003aer": "a", "total": 1, "total": 2}', "total"),  # an escaped colon
        (b'{"owner": "x", "total": 1, "owner": "a:b:c"}', "owner"),
    ],
)
def test_a_key_given_twice_is_a_422_naming_it(body: bytes, key: str) -> None:
    problem = refused(body)
    assert (problem.status, problem.code) == (422, "validation-error")
    assert problem.extra["errors"][0]["loc"][-1] == key
    assert problem.extra["errors"][0]["type"] == "duplicate_key"


def test_colons_inside_strings_are_not_taken_for_repeated_keys() -> None:
    body = b'{"owner": "a:b", "total": 1, "lines": [{"name": "x:\\u003a:", "quantity": 1}]}'
    assert read(Basket, body, JSON).lines[0].name == "x:::"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"owner": "a", "total": "19.90"}', "total"),  # money is a number, not a string
        (b'{"owner": "a", "total": 19.901}', "total"),
        (b'{"owner": "a", "total": 0}', "total"),
        (b'{"owner": "a", "total": -1}', "total"),
        (b'{"owner": "a", "total": true}', "total"),
        (b'{"owner": "a", "total": 1e400}', "total"),
        (b'{"owner": "a", "total": 1.0000000000000000000000000000001}', "total"),
        (b'{"owner": "a", "total": 10000000000000.01}', "total"),
        (b'{"owner": 5, "total": 1}', "owner"),  # a number is not text
        (b'{"owner": " a", "total": 1}', "owner"),
        (b'{"owner": "a\\u0000b", "total": 1}', "owner"),
        (b'{"owner": "a\\u0085", "total": 1}', "owner"),  # a C1 control character
        (b'{"owner": "", "total": 1}', "owner"),
        (b'{"owner": "a", "total": 1, "note": "x"}', "note"),  # unknown
        (b'{"total": 1}', "owner"),  # missing
        (b'{"owner": "a", "total": 1, "lines": [{"name": "x", "quantity": 1.0}]}', "quantity"),
        (b'{"owner": "a", "total": 1, "lines": [{"name": "x", "quantity": "1"}]}', "quantity"),
        (
            b'{"owner": "a", "total": 1, "lines": [{"name": "x", "quantity": 1%s}]}' % (b"0" * 30),
            "quantity",
        ),
    ],
)
def test_a_value_that_breaks_the_model_is_a_422_naming_the_field(body: bytes, field: str) -> None:
    problem = refused(body)
    assert (problem.status, problem.code) == (422, "validation-error")
    assert problem.extra["errors"][0]["loc"][-1] == field
    assert problem.detail.split(":")[0].split(".")[-1] == field


def test_a_list_index_is_part_of_the_path() -> None:
    problem = refused(b'{"owner": "a", "total": 1, "lines": [{"name": "x", "quantity": 0}]}')
    assert problem.extra["errors"][0]["loc"] == ["body", "lines", "0", "quantity"]
    text_problem = refused(b'{"owner": "a ", "total": 1}')
    assert "control characters" in text_problem.detail  # the words, not the pattern


def test_the_schemas_describe_money_and_text_for_the_document() -> None:
    schemas = schema_components([Basket])
    total = schemas["Basket"]["properties"]["total"]
    assert (total["type"], total["multipleOf"], total["exclusiveMinimum"]) == ("number", 0.01, 0)
    assert schemas["Basket"]["additionalProperties"] is False
    assert schemas["Basket"]["properties"]["lines"]["items"] == {
        "$ref": "#/components/schemas/Line"
    }
    assert schemas["Line"]["properties"]["name"]["pattern"]


class Deductible(Input):
    deductible: CentsOrZero


@pytest.mark.parametrize(("number", "cents"), [(b"0", 0), (b"0.00", 0), (b"19.9", 1990)])
def test_an_amount_that_may_be_zero_is_read_in_exact_cents(number: bytes, cents: int) -> None:
    read_back = read(Deductible, b'{"deductible": %s}' % number, JSON).deductible
    assert (read_back, type(read_back)) == (cents, CentsOrZero)


@pytest.mark.parametrize("number", [b"-1", b"-0.01", b"0.001", b'"0"', b"true", b"1e400"])
def test_an_amount_that_may_be_zero_is_never_below_it_nor_a_fraction_of_a_cent(
    number: bytes,
) -> None:
    with pytest.raises(Problem) as caught:
        read(Deductible, b'{"deductible": %s}' % number, JSON)
    assert (caught.value.status, caught.value.code) == (422, "validation-error")
    assert caught.value.extra["errors"][0]["loc"] == ["body", "deductible"]


def test_the_schema_of_an_amount_that_may_be_zero_says_so() -> None:
    schema = schema_components([Deductible])["Deductible"]["properties"]["deductible"]
    assert (schema["type"], schema["multipleOf"], schema["minimum"]) == ("number", 0.01, 0)
    assert "exclusiveMinimum" not in schema
