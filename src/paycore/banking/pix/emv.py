"""EMV® QR Code, merchant-presented mode, as text: a payload is a run of data objects, each a
two-digit tag, a two-digit length (01 to 99) and that many characters; a template's value is
itself such a run; the payload starts with 00 (payload format indicator) and ends with 63, the
CRC16 of everything before its value. This module reads and writes that structure and names
every field; ``brcode`` gives the fields Pix's meaning. Standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from paycore.platform.errors import DomainError

MAX_VALUE = 99
"""A data object's value is at most 99 characters (its length is two digits)."""
MAX_PAYLOAD = 512
"""The longest payload the EMV specification allows."""
CRC = "63"
PIX_GUI = "br.gov.bcb.pix"
"""The globally unique identifier of Pix's templates (case-insensitive: a reversed domain)."""


class BrCodeError(DomainError):
    """The BR Code is malformed or breaks a rule of the Pix manual; ``field`` is the tag (and
    sub-tag) of the field at fault, empty for the payload as a whole."""

    code = "invalid-br-code"
    status = 422

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}" if field else problem, field=field)
        self.field = field


class DataObject(NamedTuple):
    tag: str
    value: str


def crc16(data: str) -> str:
    """CRC-16/CCITT-FALSE of ``data`` (polynomial 0x1021, initial value 0xFFFF, no reflection,
    no final XOR) as four uppercase hexadecimal digits, the way field 63 carries it."""
    crc = 0xFFFF
    for byte in data.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1
        crc &= 0xFFFF
    return f"{crc:04X}"


def with_crc(body: str) -> str:
    """``body`` closed by its field 63: the CRC covers the body and the ``6304`` before it."""
    head = body + CRC + "04"
    return head + crc16(head)


@dataclass(frozen=True, slots=True)
class CrcCheck:
    computed: str
    found: str

    @property
    def holds(self) -> bool:
        return self.computed == self.found.upper()


def check_crc(payload: str) -> CrcCheck:
    """The CRC the payload's last field carries against the one computed over what precedes
    it. The payload must end with ``6304`` and four characters."""
    tail = payload[-8:]
    if len(payload) < 8 or not tail.startswith(CRC + "04"):
        raise BrCodeError(CRC, "CRC: the payload must end with 6304 and the CRC's 4 digits")
    return CrcCheck(computed=crc16(payload[:-4]), found=payload[-4:])


def read(text: str, template: str = "") -> list[DataObject]:
    """The data objects of ``text`` in their order. ``template`` is the path of the template
    whose value ``text`` is (``""`` for the payload), for the messages: each names the field."""
    found: list[DataObject] = []
    seen: set[str] = set()
    at = 0
    while at < len(text):
        if len(text) - at < 4:
            raise BrCodeError(
                template,
                f"{_where(template)} ends with {text[at:]!r}: too short "
                "for a field (two digits of tag, two of length)",
            )
        tag, length = text[at : at + 2], text[at + 2 : at + 4]
        if not (tag.isascii() and tag.isdigit()):
            raise BrCodeError(
                template,
                f"{_where(template)} has {tag!r} where a tag (two "
                f"digits) should be, at character {at + 1}",
            )
        path = join(template, tag)
        if not (length.isascii() and length.isdigit()) or length == "00":
            raise BrCodeError(path, f"{name(path)}: length {length!r} is not 01 to 99")
        value = text[at + 4 : at + 4 + int(length)]
        if len(value) < int(length):
            raise BrCodeError(
                path,
                f"{name(path)}: its length says {int(length)} characters but only "
                f"{len(value)} follow"
                + (f" within {template}" if template else ": the code is cut short"),
            )
        if tag in seen:
            raise BrCodeError(path, f"{name(path)} appears twice")
        seen.add(tag)
        found.append(DataObject(tag, value))
        at += 4 + int(length)
    return found


def write(objects: list[DataObject], template: str = "") -> str:
    """The data objects as text, each value checked against the 99 characters a length
    holds."""
    parts = []
    for tag, value in objects:
        path = join(template, tag)
        if not value:
            raise BrCodeError(path, f"{name(path)} is empty")
        if len(value) > MAX_VALUE:
            raise BrCodeError(
                path, f"{name(path)} is {len(value)} characters; a field holds at most {MAX_VALUE}"
            )
        parts.append(f"{tag}{len(value):02d}{value}")
    return "".join(parts)


def join(template: str, tag: str) -> str:
    return f"{template}.{tag}" if template else tag


def _where(template: str) -> str:
    return f"{name(template)}'s value" if template else "the payload"


# --- names -------------------------------------------------------------------------------


ROOT = {
    "00": "payload format indicator",
    "01": "point of initiation method",
    "52": "merchant category code",
    "53": "transaction currency",
    "54": "transaction amount",
    "55": "tip or convenience indicator",
    "56": "convenience fee, fixed",
    "57": "convenience fee, percentage",
    "58": "country code",
    "59": "merchant name",
    "60": "merchant city",
    "61": "postal code",
    "62": "additional data field template",
    "63": "CRC",
    "64": "merchant information, language template",
}
ADDITIONAL = {
    "01": "bill number",
    "02": "mobile number",
    "03": "store label",
    "04": "loyalty number",
    "05": "txid (reference label)",
    "06": "customer label",
    "07": "terminal label",
    "08": "purpose of transaction",
    "09": "additional consumer data request",
}
LANGUAGE = {
    "00": "language preference",
    "01": "merchant name, alternate language",
    "02": "merchant city, alternate language",
}
PIX = {
    "00": "GUI",
    "01": "key",
    "02": "description (infoAdicional)",
    "03": "payment service facilitator",
    "25": "location URL",
}
"""Pix's sub-fields in its templates (merchant account information, unreserved templates)."""


def name(path: str, *, pix: bool | None = None) -> str:
    """What the field at ``path`` (``"59"``, ``"62.05"``) is. Sub-fields of a template in 26–51
    or 80–99 get Pix's names if ``pix`` (by default: in 26, the one Pix's codes use)."""
    top, _, sub = path.partition(".")
    number = int(top) if top.isdigit() else -1
    if not sub:
        if 2 <= number <= 25:
            return "merchant account information (card network)"
        if 26 <= number <= 51:
            return "merchant account information"
        if 65 <= number <= 79:
            return "reserved for EMVCo"
        if 80 <= number <= 99:
            return "unreserved template"
        return ROOT.get(top, "field")
    if top == "62":
        if 50 <= int(sub) <= 99:
            return "payment system specific template"
        return ADDITIONAL.get(sub, "additional data")
    if top == "64":
        return LANGUAGE.get(sub, "language template data")
    if (top == "26") if pix is None else pix:
        return PIX.get(sub, "sub-field")
    return "globally unique identifier" if sub == "00" else "sub-field"


TEMPLATES = {*(f"{n:02d}" for n in range(26, 52)), "62", "64", *(f"{n}" for n in range(80, 100))}
"""The root tags whose value is itself a run of data objects."""


@dataclass(frozen=True, slots=True)
class Field:
    """A field for display: its path (``"26.01"``), what it is, its value as written, and the
    sub-fields of a template."""

    path: str
    name: str
    value: str
    fields: tuple[Field, ...] = ()


def fields(payload: str) -> tuple[Field, ...]:
    """Every field of the payload, templates with their sub-fields, checking the structure
    only (tags, lengths, nesting of the templates Pix uses) and not the values or the CRC. A
    template Pix does not use whose value is not a run of data objects is shown as written."""
    shown = []
    for tag, value in read(payload):
        children: tuple[Field, ...] = ()
        if tag in TEMPLATES:
            children = _children(tag, value, strict=tag in ("26", "62"))
        shown.append(Field(tag, name(tag), value, children))
    return tuple(shown)


def _children(tag: str, value: str, *, strict: bool) -> tuple[Field, ...]:
    try:
        objects = read(value, tag)
    except BrCodeError:
        if strict:
            raise
        return ()
    gui = next((v for t, v in objects if t == "00"), "")
    pix = gui.lower() == PIX_GUI
    return tuple(Field(join(tag, sub), name(join(tag, sub), pix=pix), v) for sub, v in objects)
