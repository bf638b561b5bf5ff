"""Pix keys: each kind recognized as the DICT writes it (and as a person types it), and every
way a key can be wrong refused with what is wrong said."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore.banking.domain import cpf_check_digits
from paycore.banking.pix.keys import (
    InvalidPixKey,
    KeyKind,
    PixKey,
    cnpj_check_digits,
    key_kind,
    parse_key,
)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("52998224725", KeyKind.CPF),
        ("00038166000105", KeyKind.CNPJ),  # the Central Bank's own, from the manual
        ("00000000000191", KeyKind.CNPJ),  # Banco do Brasil
        ("33000167000101", KeyKind.CNPJ),  # Petrobras
        ("fulano_da_silva.recebedor@example.com", KeyKind.EMAIL),  # the manual's
        ("Fulano@Example.com", KeyKind.EMAIL),  # e-mail keys are case-insensitive
        ("+5561912345678", KeyKind.PHONE),  # the manual's
        ("+556132345678", KeyKind.PHONE),  # 8 digits after the area code
        ("123e4567-e12b-12d1-a456-426655440000", KeyKind.EVP),  # the manual's
        ("123E4567-E12B-12D1-A456-426655440000", KeyKind.EVP),
    ],
)
def test_keys_as_a_br_code_carries_them(key: str, kind: KeyKind) -> None:
    assert key_kind(key) is kind


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("529.982.247-25", PixKey(KeyKind.CPF, "52998224725")),
        ("  52998224725 ", PixKey(KeyKind.CPF, "52998224725")),
        ("00.038.166/0001-05", PixKey(KeyKind.CNPJ, "00038166000105")),
        ("Fulano@Example.COM", PixKey(KeyKind.EMAIL, "fulano@example.com")),
        ("+55 (61) 91234-5678", PixKey(KeyKind.PHONE, "+5561912345678")),
        ("+55 61 3234.5678", PixKey(KeyKind.PHONE, "+556132345678")),
        (
            "123E4567-E12B-12D1-A456-426655440000",
            PixKey(KeyKind.EVP, "123e4567-e12b-12d1-a456-426655440000"),
        ),
    ],
)
def test_a_typed_key_becomes_the_key_the_dict_keeps(typed: str, key: PixKey) -> None:
    assert parse_key(typed) == key


@given(st.from_regex(r"\A[0-9]{9}\Z").filter(lambda d: len(set(d)) > 1))
def test_a_cpf_needs_its_check_digits(base: str) -> None:
    right = cpf_check_digits(base)
    assert key_kind(base + right) is KeyKind.CPF
    wrong = f"{(int(right) + 1) % 100:02d}"
    with pytest.raises(InvalidPixKey, match="check digits do not match"):
        key_kind(base + wrong)


@given(st.from_regex(r"\A[0-9]{12}\Z").filter(lambda d: len(set(d)) > 1))
def test_a_cnpj_needs_its_check_digits(base: str) -> None:
    right = cnpj_check_digits(base)
    assert key_kind(base + right) is KeyKind.CNPJ
    for wrong in (f"{(int(right) + 1) % 100:02d}", right[::-1]):
        if wrong != right:
            with pytest.raises(InvalidPixKey, match=f"CNPJ key {base}{wrong}: the check digits"):
                key_kind(base + wrong)


@given(st.uuids())
def test_every_uuid_is_a_random_key(uuid: object) -> None:
    assert parse_key(str(uuid).upper()) == PixKey(KeyKind.EVP, str(uuid))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "the Pix key is empty"),
        ("   ", "the Pix key is empty"),
        ("52998224726", "CPF key 52998224726: the CPF's check digits do not match"),
        ("11111111111", "CPF key 11111111111: a CPF of one repeated digit is not valid"),
        ("00038166000106", "CNPJ key 00038166000106: the check digits do not match"),
        ("00000000000000", "CNPJ key 00000000000000: a CNPJ of one repeated digit"),
        ("1234567890", "a key of digits is a CPF (11 digits) or a CNPJ (14 digits); "),
        ("123456789012", "123456789012 has 12"),
        ("5561912345678", "5561912345678 has 13 (a phone key starts with +55)"),
        ("+15551234567", "phone key +15551234567: a Pix phone key is Brazilian, +55 first"),
        ("+55619123456789", "after +55 come the 2-digit area code and 8 or 9 digits"),
        ("+55611234567", "after +55 come the 2-digit area code and 8 or 9 digits"),
        ("+5501912345678", "phone key +5501912345678: 01 is not an area code"),
        ("+5561812345678", "a 9-digit mobile number starts with 9"),
        ("+55 61 9123x5678", "after +55 come digits only"),
        ("fulano@@example.com", "an address has exactly one @"),
        ("fulano@example", "what follows the @ is not a domain such as example.com"),
        ("ful ano@example.com", "'ful ano' before the @ is not an address's local part"),
        ("@example.com", "'' before the @ is not an address's local part"),
        ("123e4567e12b12d1a456426655440000", "is not a random key: a UUID is 8-4-4-4-12"),
        ("123e4567-e12b-12d1-a456-42665544000g", "is not a random key: a UUID is 8-4-4-4-12"),
        ("fulano", "'fulano' is not a Pix key: a CPF (11 digits), a CNPJ (14 digits)"),
        ("a" * 70 + "@example.com", "a Pix key is at most 77 characters; this one is 82"),
    ],
)
def test_bad_keys_are_refused_saying_why(key: str, message: str) -> None:
    with pytest.raises(InvalidPixKey, match=re.escape(message)) as caught:
        parse_key(key)
    assert (caught.value.code, caught.value.status) == ("invalid-pix-key", 422)


def test_a_key_in_a_br_code_is_written_bare() -> None:
    with pytest.raises(InvalidPixKey, match=re.escape("a CPF key is written as its digits")):
        key_kind("529.982.247-25")
    with pytest.raises(InvalidPixKey, match=re.escape("a CNPJ key is written as its digits")):
        key_kind("00.038.166/0001-05")
    with pytest.raises(InvalidPixKey, match=re.escape("after +55 come digits only")):
        key_kind("+55 61 91234-5678")
