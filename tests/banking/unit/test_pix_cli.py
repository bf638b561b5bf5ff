"""`paycore banking pix encode` and `decode` in this process: the payload printed alone on
stdout, the QR code written as PNG and SVG at level M; every field listed with its tag, the
CRC's verdict, and exit status 1 for a code that is tampered, cut short or breaks a rule."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner
from unit_fixtures import Cli

from paycore.banking.pix import qr
from paycore.banking.pix.brcode import crc16, decode

EVP = "123e4567-e12b-12d1-a456-426655440000"
MANUAL_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)


def encode(cli: Cli, *args: str) -> str:
    result = cli.run("banking", "pix", "encode", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_the_manual_s_static_code_is_printed_alone_on_stdout(cli: Cli) -> None:
    out = encode(cli, "--key", EVP, "--name", "Fulano de Tal", "--city", "BRASILIA")
    assert out == MANUAL_STATIC + "\n"


def test_a_typed_key_amount_and_accented_names_are_made_right(cli: Cli) -> None:
    out = encode(
        cli, "--key", "529.982.247-25", "--name", "Padaria São João", "--city", "Goiânia",
        "--amount", "10.50", "--txid", "PEDIDO42", "--description", "Pão de queijo",
    )  # fmt: skip
    code = decode(out.strip())
    assert (code.key, code.name, code.city) == ("52998224725", "Padaria Sao Joao", "Goiania")
    assert (code.amount, code.txid, code.description) == (1050, "PEDIDO42", "Pao de queijo")
    assert "540510.50" in out


def test_a_dynamic_code_from_its_location(cli: Cli) -> None:
    out = encode(
        cli, "--url", "pix.example.com/qr/v2/cobv/9d36b84f", "--name", "Loja", "--city", "Recife"
    )
    code = decode(out.strip())
    assert code.is_dynamic
    assert (code.url, code.point_of_initiation, code.txid) == (
        "pix.example.com/qr/v2/cobv/9d36b84f",
        "12",
        None,
    )


def test_the_qr_code_is_written_as_png_and_svg(cli: Cli, tmp_path: Path) -> None:
    png, svg = tmp_path / "code.png", tmp_path / "code.svg"
    result = cli.run(
        "banking", "pix", "encode", "--key", EVP, "--name", "Fulano de Tal",
        "--city", "BRASILIA", "--png", str(png), "--svg", str(svg),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == MANUAL_STATIC + "\n"
    assert f"QR code written to {png}" in result.stderr
    assert png.read_bytes() == qr.png(MANUAL_STATIC)
    assert svg.read_text() == qr.svg(MANUAL_STATIC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "52998224726"], "26.01 key: CPF key 52998224726: the CPF's check digits"),
        (["--key", EVP, "--amount", "10.505"], "54 transaction amount 10.505 has 3 decimal"),
        (["--key", EVP, "--amount", "0"], "54 transaction amount must be more than zero"),
        (["--key", EVP, "--amount", "-3"], "54 transaction amount -3 must be more than zero"),
        (["--key", EVP, "--amount", "10,50"], "the decimal mark is a point (10.50)"),
        (["--key", EVP, "--txid", "pedido-42"], "62.05 txid 'pedido-42' has '-'"),
        ([], "26 give --key (a static code) or --url (a dynamic code), one of them"),
        (["--key", EVP, "--url", "pix.example.com/a"], "26 give --key"),
        (["--url", "pix.example.com/a", "--txid", "A1"], "62.05 a dynamic code's txid"),
        (["--url", "https://pix.example.com/a"], "26.25 location URL is written without"),
    ],
)
def test_bad_input_is_refused_naming_the_field(cli: Cli, args: list[str], message: str) -> None:
    result = cli.run("banking", "pix", "encode", "--name", "Loja", "--city", "Recife", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_an_image_that_cannot_be_written_fails_clearly(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "folder" / "code.png"
    result = cli.run(
        "banking",
        "pix",
        "encode",
        "--key",
        EVP,
        "--name",
        "N",
        "--city",
        "C",
        "--png",
        str(missing),
    )
    assert result.exit_code == 1
    assert f"cannot write {missing}: No such file or directory" in result.stderr


def test_decode_lists_every_field_with_its_tag_and_the_crc(cli: Cli) -> None:
    result = cli.run("banking", "pix", "decode", MANUAL_STATIC)
    assert result.exit_code == 0, result.stderr
    rows = [line.split(maxsplit=1) for line in result.stdout.splitlines()]
    assert [row[0] for row in rows[:13]] == [
        "00", "26", "26.00", "26.01", "52", "53", "58", "59", "60", "62", "62.05", "63", "CRC",
    ]  # fmt: skip
    assert "  26.01 key" in result.stdout
    assert result.stdout.splitlines()[3].endswith(EVP)
    assert "59      merchant name" in result.stdout
    assert "CRC holds: 1D3D" in result.stdout
    assert f"a static Pix code: key {EVP} (random key (EVP)), amount typed by the payer" in (
        result.stdout
    )


def test_decode_reads_standard_input_with_a_dash() -> None:
    from paycore.__main__ import app

    result = CliRunner().invoke(app, ["banking", "pix", "decode", "-"], input=MANUAL_STATIC + "\n")
    assert result.exit_code == 0, result.stderr
    assert "CRC holds: 1D3D" in result.stdout


def test_a_tampered_crc_is_shown_and_exits_1(cli: Cli) -> None:
    result = cli.run("banking", "pix", "decode", MANUAL_STATIC[:-4] + "1D3E")
    assert result.exit_code == 1
    assert "59      merchant name" in result.stdout  # the fields are still listed
    assert "63 CRC does NOT hold: computed 1D3D, found 1D3E" in result.stderr


def test_a_cut_short_code_exits_1_naming_the_field(cli: Cli) -> None:
    result = cli.run("banking", "pix", "decode", MANUAL_STATIC[:40])
    assert result.exit_code == 1
    assert "not a BR Code: 26 merchant account information: its length says 58" in result.stderr


def test_a_rule_broken_under_a_good_crc_exits_1_naming_the_field(cli: Cli) -> None:
    body = MANUAL_STATIC[:-8].replace("5913Fulano de Tal", "5927Fulano de Tal Comercio Ltda")
    payload = body + "6304" + crc16(body + "6304")
    result = cli.run("banking", "pix", "decode", payload)
    assert result.exit_code == 1
    assert "CRC holds" in result.stdout
    assert "59 merchant name is 27 characters; at most 25" in result.stderr


# --- the images ----------------------------------------------------------------------------


def test_the_symbol_is_at_error_correction_level_m() -> None:
    assert qr.symbol(MANUAL_STATIC).error == "M"


def test_the_png_is_a_png_of_the_symbol_with_its_quiet_zone() -> None:
    image = qr.png(MANUAL_STATIC, scale=5)
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", image[16:24])  # the IHDR chunk
    modules = qr.symbol(MANUAL_STATIC).symbol_size(scale=1, border=4)
    assert (width, height) == (modules[0] * 5, modules[1] * 5)


def test_the_svg_is_an_svg_document_of_the_same_size() -> None:
    root = ET.fromstring(qr.svg(MANUAL_STATIC, scale=5))  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    size = qr.symbol(MANUAL_STATIC).symbol_size(scale=5, border=4)
    assert (int(root.attrib["width"]), int(root.attrib["height"])) == size


def test_nothing_to_draw_is_refused() -> None:
    with pytest.raises(ValueError, match="no payload"):
        qr.png("")
