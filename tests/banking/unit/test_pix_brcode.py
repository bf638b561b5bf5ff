"""Pix BR Codes with no I/O: the examples of the Central Bank's "Manual de Padrões para
Iniciação do Pix" decoded and encoded back to the same string, round trips of generated codes,
and every way a payload can be wrong (tampered CRC, wrong lengths, cut short, missing or wrong
fields, accented text), each refused with the field named."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paycore import contexts
from paycore.banking.domain import cpf_check_digits
from paycore.banking.pix.brcode import (
    MAX_AMOUNT,
    BrCode,
    BrCodeError,
    check_crc,
    check_txid,
    crc16,
    decode,
    fields,
    format_amount,
    normalize,
    parse_amount,
)
from paycore.banking.pix.emv import DataObject
from paycore.banking.pix.keys import cnpj_check_digits

EVP = "123e4567-e12b-12d1-a456-426655440000"

# The manual, version 2.1: §1.5.4 (a static code: a random key, no amount, no txid) and
# §1.6.7 (a dynamic code: a location, an amount, a reference label), payload and CRC as
# printed there.
MANUAL_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
MANUAL_DYNAMIC = (
    "00020101021226730014br.gov.bcb.pix2551pix.example.com/v2/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865406123.455802BR5913Fulano de Tal6008BRASILIA62190515RP12345678-2019"
    "63047309"
)
# Later versions of the manual, as they are quoted: the dynamic example without amount nor
# reference label, and a composite code (Pix Automático) whose location is in template 80.
LATER_DYNAMIC = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***630464E4"
)
LATER_COMPOSITE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865406100.505802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80740014br.gov.bcb.pix2552pix.example.com/rec/2353c790eefb11eaadc10242ac120002"
    "63042875"
)
EXAMPLES = [MANUAL_STATIC, MANUAL_DYNAMIC, LATER_DYNAMIC, LATER_COMPOSITE]


def tlv(tag: str, value: str) -> str:
    """A data object written by hand, apart from the module's writer."""
    return f"{tag}{len(value):02d}{value}"


def closed(body: str) -> str:
    """``body`` with field 63 and its CRC."""
    return body + "6304" + crc16(body + "6304")


def static_body(**replaced: str | None) -> str:
    """The manual's static code without its CRC, with root fields replaced (``None``: left
    out); ``f26`` etc. name the tags."""
    parts = {
        "00": "01",
        "26": tlv("00", "br.gov.bcb.pix") + tlv("01", EVP),
        "52": "0000",
        "53": "986",
        "58": "BR",
        "59": "Fulano de Tal",
        "60": "BRASILIA",
        "62": tlv("05", "***"),
    }
    for name, value in replaced.items():
        parts[name.removeprefix("f")] = value  # type: ignore[assignment]
    return "".join(tlv(tag, value) for tag, value in parts.items() if value is not None)


def says(start: str) -> AbstractContextManager[Any]:
    """Expects a ``BrCodeError`` whose message starts with ``start``."""
    return pytest.raises(BrCodeError, match="^" + re.escape(start))


def refused(payload: str) -> str:
    with pytest.raises(BrCodeError) as caught:
        decode(payload)
    return str(caught.value)


# --- the manual's examples -----------------------------------------------------------------


def test_the_crc_is_crc16_ccitt_false() -> None:
    assert crc16("123456789") == "29B1"  # the catalogued check value of CRC-16/CCITT-FALSE
    assert crc16("") == "FFFF"


@pytest.mark.parametrize("payload", EXAMPLES)
def test_the_examples_decode_their_crc_holds_and_they_encode_back_identically(
    payload: str,
) -> None:
    crc = check_crc(payload)
    assert crc.holds
    assert crc.computed == payload[-4:]
    assert decode(payload).encode() == payload


def test_the_static_example_is_what_the_manual_says_it_holds() -> None:
    code = decode(MANUAL_STATIC)
    assert code == BrCode(name="Fulano de Tal", city="BRASILIA", key=EVP)
    assert not code.is_dynamic
    assert (code.amount, code.txid, code.point_of_initiation) == (None, None, None)
    # and made from the manual's table, not from the payload, it is the manual's string
    assert BrCode.static(EVP, "Fulano de Tal", "BRASILIA").encode() == MANUAL_STATIC


def test_the_dynamic_example_is_what_the_manual_says_it_holds() -> None:
    code = decode(MANUAL_DYNAMIC)
    assert code.is_dynamic
    assert code.url == "pix.example.com/v2/8b3da2f39a4140d1a91abd93113bd441"
    assert code.amount == 12345
    assert code.point_of_initiation == "12"
    assert code.txid == "RP12345678-2019"  # ignored by the payer; the manual writes one
    made = BrCode(
        name="Fulano de Tal",
        city="BRASILIA",
        url="pix.example.com/v2/8b3da2f39a4140d1a91abd93113bd441",
        amount=12345,
        txid="RP12345678-2019",
    )
    assert made.encode() == MANUAL_DYNAMIC
    later = BrCode.dynamic(
        "pix.example.com/8b3da2f39a4140d1a91abd93113bd441", "Fulano de Tal", "BRASILIA"
    )
    assert later.encode() == LATER_DYNAMIC


def test_fields_pix_does_not_define_are_kept_as_found() -> None:
    code = decode(LATER_COMPOSITE)
    assert code.amount == 10050
    [template] = code.others
    assert template.tag == "80"
    assert template.value.endswith("pix.example.com/rec/2353c790eefb11eaadc10242ac120002")


def test_other_sub_fields_of_the_additional_data_are_kept() -> None:
    version = tlv("00", "br.gov.bcb.brcode") + tlv("01", "1.0.0")
    payload = closed(static_body(f62=tlv("05", "QRcodesimples") + tlv("50", version)))
    code = decode(payload)
    assert code.txid == "QRcodesimples"
    assert code.additional == (DataObject("50", version),)
    assert code.encode() == payload


def test_every_field_is_listed_with_its_tag_name_and_sub_fields() -> None:
    listed = fields(LATER_COMPOSITE)
    assert [f.path for f in listed] == [
        "00",
        "26",
        "52",
        "53",
        "54",
        "58",
        "59",
        "60",
        "62",
        "80",
        "63",
    ]
    account = listed[1]
    assert [(f.path, f.name, f.value) for f in account.fields] == [
        ("26.00", "GUI", "br.gov.bcb.pix"),
        ("26.01", "key", EVP),
    ]
    assert (listed[4].name, listed[4].value) == ("transaction amount", "100.50")
    assert [(f.path, f.value) for f in listed[8].fields] == [("62.05", "***")]
    assert [(f.path, f.name) for f in listed[9].fields] == [
        ("80.00", "GUI"),
        ("80.25", "location URL"),
    ]
    assert (listed[10].name, listed[10].value) == ("CRC", "2875")


def test_a_crc_written_in_lowercase_is_read() -> None:
    assert decode(MANUAL_STATIC[:-4] + "1d3d").encode() == MANUAL_STATIC


def test_the_gui_is_case_insensitive() -> None:
    payload = closed(static_body(f26=tlv("00", "BR.GOV.BCB.PIX") + tlv("01", EVP)))
    assert decode(payload).key == EVP


# --- round trips ---------------------------------------------------------------------------

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
ALNUM = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@st.composite
def keys(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["cpf", "cnpj", "email", "phone", "evp"]))
    if kind == "cpf":
        base = draw(st.from_regex(r"\A[0-9]{9}\Z")).replace("000000000", "000000001")
        return base + cpf_check_digits(base)
    if kind == "cnpj":
        base = draw(st.from_regex(r"\A[0-9]{12}\Z")).replace("000000000000", "000000000001")
        return base + cnpj_check_digits(base)
    if kind == "email":
        return draw(st.from_regex(r"\A[a-z0-9._+-]{1,20}@[a-z0-9]{1,15}\.(com|com\.br|org)\Z"))
    if kind == "phone":
        return draw(st.from_regex(r"\A\+55[1-9]{2}(9[0-9]{8}|[2-5][0-9]{7})\Z"))
    return str(draw(st.uuids()))


def amounts() -> st.SearchStrategy[int | None]:
    return st.none() | st.integers(1, MAX_AMOUNT)


@st.composite
def static_codes(draw: st.DrawFn) -> BrCode:
    return BrCode(
        name=draw(st.text(PRINTABLE, min_size=1, max_size=25)),
        city=draw(st.text(PRINTABLE, min_size=1, max_size=15)),
        key=draw(keys()),
        amount=draw(amounts()),
        txid=draw(st.none() | st.text(ALNUM, min_size=1, max_size=25)),
        description=draw(st.none() | st.text(PRINTABLE, min_size=1, max_size=30)),
        mcc=draw(st.from_regex(r"\A[0-9]{4}\Z")),
        point_of_initiation=draw(st.sampled_from([None, "11"])),
    )


@st.composite
def dynamic_codes(draw: st.DrawFn) -> BrCode:
    url = draw(st.from_regex(r"\A[a-z0-9-]{1,20}(\.[a-z]{2,6}){1,2}/[A-Za-z0-9/_.-]{1,40}\Z"))
    return BrCode.dynamic(
        url,
        draw(st.text(PRINTABLE, min_size=1, max_size=25).filter(str.strip)),
        draw(st.text(PRINTABLE, min_size=1, max_size=15).filter(str.strip)),
        amount=draw(amounts()),
    )


@settings(deadline=None)
@given(static_codes() | dynamic_codes())
def test_a_code_decodes_to_itself(code: BrCode) -> None:
    payload = code.encode()
    assert decode(payload) == code
    assert check_crc(payload).holds
    assert re.fullmatch(r"[ -~]+", payload)


@settings(deadline=None)
@given(static_codes(), st.data())
def test_any_character_changed_is_refused(code: BrCode, data: st.DataObject) -> None:
    payload = code.encode()
    at = data.draw(st.integers(0, len(payload) - 1))
    other = data.draw(PRINTABLE.filter(lambda c: c.upper() != payload[at].upper()))
    with pytest.raises(BrCodeError):
        decode(payload[:at] + other + payload[at + 1 :])


@pytest.mark.parametrize("payload", EXAMPLES)
def test_every_cut_short_payload_is_refused(payload: str) -> None:
    for end in range(len(payload)):
        with pytest.raises(BrCodeError):
            decode(payload[:end])


# --- what is refused, and how it is said ---------------------------------------------------


def test_a_tampered_crc_names_both() -> None:
    assert refused(MANUAL_STATIC[:-4] + "1D3E") == "63 CRC: computed 1D3D, found 1D3E"
    assert refused(MANUAL_STATIC[:-4] + "1D3G") == "63 CRC '1D3G' is not 4 hexadecimal digits"


def test_a_tampered_value_fails_the_crc() -> None:
    assert refused(MANUAL_STATIC.replace("BRASILIA", "BRASILIO")) == (
        f"63 CRC: computed {crc16(MANUAL_STATIC.replace('BRASILIA', 'BRASILIO')[:-4])}, found 1D3D"
    )


def test_names_and_cities_too_long_are_refused() -> None:
    assert (
        refused(closed(static_body(f59="A" * 31)))
        == "59 merchant name is 31 characters; at most 25"
    )
    assert (
        refused(closed(static_body(f60="B" * 16)))
        == "60 merchant city is 16 characters; at most 15"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("", "the code is empty"),
        ("0002010", "the payload ends with '0': too short for a field"),
        ("00020", "00 payload format indicator: its length says 2 characters but only 1 follow"),
        ("0002016304", "63 CRC: its length says 4 characters but only 0 follow"),
        ("00AB01", "00 payload format indicator: length 'AB' is not 01 to 99"),
        ("000001", "00 payload format indicator: length '00' is not 01 to 99"),
        ("x0020163041D3D", "the payload has 'x0' where a tag (two digits) should be"),
        (
            MANUAL_STATIC[:40],
            "26 merchant account information: its length says 58 characters but only 30 follow: "
            "the code is cut short",
        ),
        ("0002010002016304ABCD", "00 payload format indicator appears twice"),
    ],
)
def test_a_broken_structure_is_named(payload: str, message: str) -> None:
    assert message in refused(payload)


def test_a_length_that_swallows_what_follows_is_seen() -> None:
    swallowed = MANUAL_STATIC.replace("6207", "6215")  # 62 takes in the CRC field
    assert refused(swallowed) == "63 CRC must come last; the code ends with 62"
    long = MANUAL_STATIC.replace("6207", "6219")
    assert refused(long) == (
        "62 additional data field template: its length says 19 characters but only 15 "
        "follow: the code is cut short"
    )


@pytest.mark.parametrize(
    ("replaced", "message"),
    [
        ({"f00": "02"}, "00 payload format indicator is '02'; a BR Code's is 01"),
        ({"f53": "840"}, "53 transaction currency is '840'; Pix's (BRL) is 986"),
        ({"f58": "US"}, "58 country code is 'US'; Pix's is BR"),
        ({"f59": None}, "59 merchant name is missing"),
        ({"f60": None}, "60 merchant city is missing"),
        ({"f26": None}, "26 merchant account information is missing"),
        ({"f52": None}, "52 merchant category code is missing"),
        ({"f62": None}, "62 additional data field template is missing"),
        ({"f62": tlv("01", "123")}, "62.05 txid is missing (a code without one says ***)"),
        ({"f52": "00A0"}, "52 merchant category code '00A0' is not 4 digits"),
        (
            {"f26": tlv("00", "br.gov.bcb.pix") + "0140" + EVP},
            "26.01 key: its length says 40 characters but only 36 follow within 26",
        ),
        (
            {"f26": tlv("00", "br.gov.bcb.pix") + "ab36" + EVP},
            "26 merchant account information's value has 'ab' where a tag (two digits) should "
            "be, at character 19",
        ),
        ({"f62": tlv("05", "***") + tlv("05", "A1")}, "62.05 txid (reference label) appears twice"),
        ({"f26": tlv("01", EVP)}, "26.00 GUI is missing; a Pix code's is br.gov.bcb.pix"),
        (
            {"f26": tlv("00", "br.com.outro") + tlv("01", EVP)},
            "26.00 GUI is 'br.com.outro'; a Pix code's is br.gov.bcb.pix",
        ),
        ({"f26": tlv("00", "br.gov.bcb.pix")}, "26 merchant account information holds a key"),
        (
            {"f26": tlv("00", "br.gov.bcb.pix") + tlv("01", EVP) + tlv("25", "pix.example.com/a")},
            "this one holds both",
        ),
        (
            {"f26": tlv("00", "br.gov.bcb.pix") + tlv("01", EVP) + tlv("07", "x")},
            "26.07 is not a field of Pix's merchant account information",
        ),
        (
            {"f62": tlv("05", "PEDIDO-42")},
            "62.05 txid 'PEDIDO-42' has '-': letters and digits only",
        ),
        ({"f62": tlv("05", "A" * 26)}, "62.05 txid is 26 characters; a static code's is 1 to 25"),
        (
            {"f59": "São Paulo"},
            "59 merchant name 'São Paulo' has 'ã', which a BR Code does not take",
        ),
        ({"f54": "10.505"}, "54 transaction amount 10.505 has 3 decimal places; at most 2"),
        ({"f54": "0.00"}, "54 transaction amount must be more than zero"),
        ({"f54": "10,50"}, "54 transaction amount 10,50: the decimal mark is a point (10.50)"),
        ({"f54": "R$10"}, "54 transaction amount 'R$10' is not an amount such as 123.45"),
        (
            {"f26": tlv("00", "br.gov.bcb.pix") + tlv("01", "123.456.789-09")},
            "26.01 key: a CPF key is written as its digits alone: 12345678909",
        ),
        (
            {"f26": tlv("00", "br.gov.bcb.pix") + tlv("01", "12345678900")},
            "26.01 key: CPF key 12345678900: the CPF's check digits do not match",
        ),
    ],
)
def test_wrong_or_missing_fields_are_named(replaced: dict[str, str | None], message: str) -> None:
    assert message in refused(closed(static_body(**replaced)))


@pytest.mark.parametrize(
    ("initiation", "account", "message"),
    [
        (
            "13",
            tlv("01", EVP),
            "01 point of initiation method is '13'; 11 (static) or 12 (dynamic)",
        ),
        ("12", tlv("01", EVP), "01 point of initiation method is 12 (dynamic) but 26 holds a key"),
        (
            "11",
            tlv("25", "pix.example.com/qr/1"),
            "01 point of initiation method is 11 but 26 holds a location URL",
        ),
    ],
)
def test_the_point_of_initiation_matches_the_kind_of_code(
    initiation: str, account: str, message: str
) -> None:
    body = static_body(f26=tlv("00", "br.gov.bcb.pix") + account)
    body = body[:6] + tlv("01", initiation) + body[6:]
    assert message in refused(closed(body))


def test_a_dynamic_code_must_say_12() -> None:
    body = static_body(f26=tlv("00", "br.gov.bcb.pix") + tlv("25", "pix.example.com/qr/1"))
    # BrCode fills 12 in for a dynamic code it makes, but a payload without it is wrong
    assert refused(closed(body)) == (
        "01 point of initiation method is missing; a dynamic code (26.25) says 12"
    )


def test_the_ends_of_the_payload_are_fixed() -> None:
    swapped = closed(tlv("52", "0000") + static_body(f52=None))
    assert (
        refused(swapped) == "00 payload format indicator must come first; the code starts with 52"
    )
    crc_inside = MANUAL_STATIC + tlv("99", "x")
    assert refused(crc_inside) == "63 CRC must come last; the code ends with 99"


def test_a_code_longer_than_512_characters_is_refused() -> None:
    big = "".join(tlv(f"{tag}", "x" * 99) for tag in range(80, 85))
    payload = closed(static_body() + big)
    assert len(payload) > 512
    assert refused(payload).startswith(
        f"the code is {len(payload)} characters; a BR Code is at most 512"
    )
    with says("the code is "):
        BrCode(
            name="N",
            city="C",
            key=EVP,
            others=tuple(DataObject(f"{t}", "x" * 99) for t in range(80, 85)),
        )


# --- making codes --------------------------------------------------------------------------


def test_names_and_cities_are_normalized_to_what_a_br_code_takes() -> None:
    code = BrCode.static(
        EVP, "  José da Conceição   Açaí & Cia. Ltda ", "São Gonçalo do Rio Abaixo"
    )
    assert code.name == "Jose da Conceicao Acai &"  # 25 characters, the space after & trimmed
    assert code.city == "Sao Goncalo do"
    assert "5924Jose da Conceicao Acai &6014Sao Goncalo do" in code.encode()


@given(st.text(max_size=60), st.integers(1, 40))
def test_normalized_text_is_printable_ascii_within_the_limit(text: str, limit: int) -> None:
    value = normalize(text, limit)
    assert re.fullmatch(r"[ -~]*", value)
    assert len(value) <= limit
    assert value == value.strip()
    assert "  " not in value


def test_a_name_with_nothing_a_br_code_carries_is_refused() -> None:
    with says("59 merchant name '東京商店' has nothing a BR Code"):
        BrCode.static(EVP, "東京商店", "Tokyo")
    with says("60 merchant city ' ' has nothing"):
        BrCode.static(EVP, "Loja", " ")


def test_a_key_is_taken_as_typed_and_written_as_the_dict_keeps_it() -> None:
    assert BrCode.static("529.982.247-25", "N", "C").key == "52998224725"
    assert BrCode.static("Fulano@Example.COM", "N", "C").key == "fulano@example.com"
    with says("26.01 key: CPF key 52998224726: "):
        BrCode.static("529.982.247-26", "N", "C")


def test_the_key_and_the_description_share_99_characters() -> None:
    key = "fulano_da_silva.recebedor@example.com"  # the manual's e-mail key, 37 characters
    assert BrCode.static(key, "N", "C", description="x" * 36).encode()  # 18 + 41 + 40 = 99
    with says("26 merchant account information is 100 characters"):
        BrCode.static(key, "N", "C", description="x" * 37)


def test_a_description_is_normalized_but_not_cut() -> None:
    code = BrCode.static("+5561912345678", "N", "C", description="Pão de queijo, 2 × café")
    assert code.description == "Pao de queijo, 2 cafe"
    with says("26.02 description is 73 characters; at most 72"):
        BrCode.static("+5561912345678", "N", "C", description="x" * 73)


def test_the_merchant_category_code_is_given_or_0000() -> None:
    assert "52045812" in BrCode.static(EVP, "N", "C", mcc="5812").encode()
    assert "52040000" in BrCode.dynamic("pix.example.com/qr/1", "N", "C").encode()
    with says("52 merchant category code '58' is not 4 digits"):
        BrCode.static(EVP, "N", "C", mcc="58")


def test_a_dynamic_code_takes_a_location_without_its_scheme() -> None:
    with says(
        "26.25 location URL is written without its scheme: pix.example.com/qr/1, not https://"
    ):
        BrCode.dynamic("https://pix.example.com/qr/1", "N", "C")
    with says("26.25 location URL 'pix example' is not a host and a path"):
        BrCode.dynamic("pix example", "N", "C")
    with says("26.25 location URL is 78 characters; at most 77"):
        BrCode.dynamic("pix.example.com/" + "a" * 62, "N", "C")


def test_a_static_code_with_12_is_refused_when_made_too() -> None:
    with says("01 "):
        BrCode(name="N", city="C", key=EVP, point_of_initiation="12")


# --- amounts and txids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "centavos"),
    [("10.50", 1050), ("10.5", 1050), ("10", 1000), ("10.", 1000), ("0.01", 1), ("0.29", 29),
     ("9999999999.99", MAX_AMOUNT), ("123.45", 12345)],
)  # fmt: skip
def test_amounts_are_exact_centavos(text: str, centavos: int) -> None:
    assert parse_amount(text) == centavos


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.505", "has 3 decimal places; at most 2"),
        ("0", "must be more than zero"),
        ("-5.00", "-5.00 must be more than zero"),
        ("1e3", "is not an amount such as 123.45"),
        ("", "is not an amount such as 123.45"),
        ("10000000000.00", "is at most 9999999999.99"),
        ("NaN", "is not an amount"),
    ],
)
def test_bad_amounts_are_refused(text: str, message: str) -> None:
    with pytest.raises(BrCodeError, match=re.escape(message)) as caught:
        parse_amount(text)
    assert caught.value.field == "54"


@given(st.integers(1, MAX_AMOUNT))
def test_written_amounts_read_back(centavos: int) -> None:
    written = format_amount(centavos)
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", written)
    assert len(written) <= 13
    assert parse_amount(written) == centavos


def test_an_amount_made_out_of_range_is_refused() -> None:
    for wrong in (0, -1, MAX_AMOUNT + 1):
        with says("54 "):
            BrCode(name="N", city="C", key=EVP, amount=wrong)


def test_txids_for_static_codes_and_for_dynamic_charges() -> None:
    assert check_txid("PEDIDO42", dynamic=False) == "PEDIDO42"
    assert check_txid("a" * 26, dynamic=True) == "a" * 26
    assert check_txid("Z" * 35, dynamic=True) == "Z" * 35
    with says("62.05 txid is 25 characters; a dynamic charge's is 26 to 35"):
        check_txid("a" * 25, dynamic=True)
    with says("62.05 txid is 36 characters; a dynamic charge's is 26 to 35"):
        check_txid("a" * 36, dynamic=True)
    with says("62.05 txid 'ação' has 'ç'"):
        check_txid("ação", dynamic=False)
    with says("62.05 txid is 0 characters"):
        check_txid("", dynamic=False)


def test_the_error_carries_the_field_for_an_api_problem() -> None:
    with pytest.raises(BrCodeError) as caught:
        decode(MANUAL_STATIC[:-4] + "0000")
    assert caught.value.field == "63"
    assert caught.value.extra == {"field": "63"}
    assert (caught.value.code, caught.value.status) == ("invalid-br-code", 422)


def test_the_codec_is_held_to_the_domain_rule() -> None:
    pure = contexts.domain_modules()
    for module in ("emv", "keys", "brcode"):
        assert f"paycore.banking.pix.{module}" in pure
