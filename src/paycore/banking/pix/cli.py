"""``paycore banking pix``: an operator's BR Codes. ``encode`` prints the payload ("copia e
cola") of a static or a dynamic code and draws its QR code; ``decode`` lists every field of a
payload with its tag, says whether the CRC holds and what the code is, exit status 1 if it is
not a valid Pix BR Code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from paycore.banking.pix import brcode
from paycore.banking.pix.brcode import BrCode, BrCodeError, Field
from paycore.banking.pix.keys import key_kind
from paycore.platform.cli import console, fail


def encode(
    *,
    key: Annotated[
        str | None,
        typer.Option(
            help="The receiver's Pix key (a static code): CPF, CNPJ, e-mail, "
            "+55 phone or random key."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="The location URL without https:// (a dynamic code), instead of --key."),
    ] = None,
    name: Annotated[str, typer.Option(help="Merchant name; accents stripped, at most 25.")],
    city: Annotated[str, typer.Option(help="Merchant city; accents stripped, at most 15.")],
    amount: Annotated[
        str | None, typer.Option(help="In reais, e.g. 10.50. Default: the payer types it.")
    ] = None,
    txid: Annotated[
        str | None, typer.Option(help="Letters and digits, at most 25 (static). Default: ***.")
    ] = None,
    description: Annotated[
        str | None,
        typer.Option(help="Shown to the payer (static); shares 99 characters with the key."),
    ] = None,
    png: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the QR code as PNG here.")
    ] = None,
    svg: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Write the QR code as SVG here.")
    ] = None,
) -> None:
    """Print a BR Code ("copia e cola") and draw its QR code.

    A static code for --key, or a dynamic one for the location --url; the QR code (error
    correction level M) is written as PNG and SVG if asked."""
    try:
        code = _code(key, url, name, city, amount, txid, description)
        payload = code.encode()
    except BrCodeError as exc:
        raise fail(str(exc), 2) from None
    typer.echo(payload)
    if png is None and svg is None:
        return
    from paycore.banking.pix import qr

    for path, image in ((png, qr.png), (svg, qr.svg)):
        if path is None:
            continue
        drawn = image(payload)
        try:
            path.write_bytes(drawn) if isinstance(drawn, bytes) else path.write_text(drawn)
        except OSError as exc:
            raise fail(f"cannot write {path}: {exc.strerror}") from None
        console.print(f"QR code written to {path}", markup=False, highlight=False, soft_wrap=True)


def _code(
    key: str | None,
    url: str | None,
    name: str,
    city: str,
    amount: str | None,
    txid: str | None,
    description: str | None,
) -> BrCode:
    centavos = None if amount is None else brcode.parse_amount(amount.strip())
    if (key is None) == (url is None):
        raise BrCodeError("26", "give --key (a static code) or --url (a dynamic code), one of them")
    if key is not None:
        return BrCode.static(key, name, city, amount=centavos, txid=txid, description=description)
    assert url is not None
    if txid is not None or description is not None:
        raise BrCodeError(
            "62.05" if txid is not None else "26.02",
            "a dynamic code's txid and description are in its location's payload; "
            "leave --txid and --description out",
        )
    return BrCode.dynamic(url, name, city, amount=centavos)


def decode(
    payload: Annotated[str, typer.Argument(help="The BR Code (quoted); - reads it from stdin.")],
) -> None:
    """List a BR Code's fields and check it.

    Every field with its tag, whether the CRC holds and what the code is. Exit status 1 if
    the CRC does not hold or the code breaks a rule (the field is named)."""
    text = (sys.stdin.read() if payload == "-" else payload).strip()
    try:
        shown = brcode.fields(text)
    except BrCodeError as exc:
        raise fail(f"not a BR Code: {exc}") from None
    for line in lines(shown):
        typer.echo(line)
    try:
        crc = brcode.check_crc(text)
        if not crc.holds:
            raise BrCodeError(
                "63", f"CRC does NOT hold: computed {crc.computed}, found {crc.found}"
            )
        typer.echo(f"CRC holds: {crc.computed}")
        code = brcode.decode(text)
    except BrCodeError as exc:
        raise fail(str(exc)) from None
    typer.echo(summary(code))


def lines(shown: tuple[Field, ...], indent: str = "") -> Iterator[str]:
    """A field a line: tag, name, value; a template's sub-fields indented under it."""
    for field in shown:
        value = "" if field.fields else field.value
        yield f"{indent}{field.path:<{8 - len(indent)}}{field.name:<36}{value}".rstrip()
        yield from lines(field.fields, indent + "  ")


def summary(code: BrCode) -> str:
    amount = "typed by the payer" if code.amount is None else brcode.format_amount(code.amount)
    if code.is_dynamic:
        return f"a dynamic Pix code (single use): location {code.url}, amount {amount}"
    assert code.key is not None
    return (
        f"a static Pix code: key {code.key} ({key_kind(code.key).label}), amount {amount}, "
        f"txid {code.txid or brcode.NO_TXID}"
    )


def register(banking: typer.Typer) -> None:
    pix = typer.Typer(help="Pix BR Codes: encode, decode.", no_args_is_help=True)
    pix.command("encode")(encode)
    pix.command("decode")(decode)
    banking.add_typer(pix, name="pix")
