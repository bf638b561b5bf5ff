"""The QR codes paycore draws, read by an independent decoder (zbar's ``zbarimg``, Debian's
zbar-tools): each image gives back exactly its payload, and that payload's CRC holds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paycore.__main__ import app
from paycore.banking.pix import qr
from paycore.banking.pix.brcode import BrCode, check_crc, decode

EVP = "123e4567-e12b-12d1-a456-426655440000"
MANUAL_STATIC = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
CODES = {
    "manual static": MANUAL_STATIC,
    "static, every field": BrCode.static(
        "fulano_da_silva.recebedor@example.com",
        "Padaria e Confeitaria São João",
        "São José dos Campos",
        amount=123456789,
        txid="PEDIDO20260042",
        description="Pao de queijo e cafe",
    ).encode(),
    "dynamic": BrCode.dynamic(
        "pix.example.com/qr/v2/cobv/9d36b84fc70b478fb95c12729b90ca25", "Loja", "Recife"
    ).encode(),
}


def zbarimg(image: Path) -> str:
    """What zbar reads in the image (``--raw``: the data alone, a newline after it)."""
    if shutil.which("zbarimg") is None:
        pytest.fail("zbarimg is not installed: apt-get install zbar-tools (scripts/install-deps)")
    done = subprocess.run(
        ["zbarimg", "--raw", "-q", str(image)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n")
    return done.stdout[:-1]


@pytest.mark.parametrize("payload", CODES.values(), ids=CODES.keys())
def test_the_png_reads_back_as_exactly_the_payload(payload: str, tmp_path: Path) -> None:
    image = tmp_path / "code.png"
    image.write_bytes(qr.png(payload))
    read = zbarimg(image)
    assert read == payload
    assert check_crc(read).holds
    assert decode(read).encode() == payload


def test_the_command_s_png_reads_back_too(tmp_path: Path) -> None:
    image = tmp_path / "code.png"
    result = CliRunner().invoke(app, [
        "banking", "pix", "encode", "--key", EVP, "--name", "Fulano de Tal",
        "--city", "BRASILIA", "--png", str(image),
    ])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert zbarimg(image) == result.stdout.strip() == MANUAL_STATIC
