"""Pix BR Codes: the EMV® payload ("copia e cola") of a Pix charge as the Central Bank's
"Manual de Padrões para Iniciação do Pix" defines it, encoded from a ``BrCode`` and decoded
back with every rule checked.

A static code carries the receiver's key (26.01) and maybe an amount, a description (26.02)
and a txid (62.05); a dynamic code carries the location URL (26.25) whose payload holds the
charge (its txid, amount and expiry), and says 12 in 01. Amounts are centavos. ``BrCodeError``
names the field at fault (``"59 merchant name is 31 characters; at most 25"``). Standard
library only."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from paycore.banking.pix import emv
from paycore.banking.pix.emv import (
    PIX_GUI,
    BrCodeError,
    CrcCheck,
    DataObject,
    Field,
    check_crc,
    crc16,
    fields,
)
from paycore.banking.pix.keys import InvalidPixKey, key_kind, parse_key

__all__ = [
    "BrCode",
    "BrCodeError",
    "CrcCheck",
    "Field",
    "check_crc",
    "check_txid",
    "crc16",
    "decode",
    "fields",
    "format_amount",
    "normalize",
    "parse_amount",
]

MAX_NAME = 25
MAX_CITY = 15
MAX_TXID = 25
"""A static code's txid: the most 62.05 (a reference label) holds."""
CHARGE_TXID = (26, 35)
"""The length of a dynamic charge's txid, which its location's payload carries."""
NO_TXID = "***"
MAX_AMOUNT = 999_999_999_999
"""9999999999.99: thirteen characters, the most field 54 holds."""
STATIC, DYNAMIC = "11", "12"
CURRENCY, COUNTRY, FORMAT = "986", "BR", "01"
ROOT_TAGS = frozenset({"00", "01", "26", "52", "53", "54", "58", "59", "60", "62", "63"})
"""The root fields a ``BrCode`` has attributes for; any other is kept in ``others``."""
ACCOUNT_TAGS = ("00", "01", "02", "25")
"""Pix's sub-fields of 26: GUI, key, description, location URL."""


@dataclass(frozen=True, slots=True)
class BrCode:
    """The content of a Pix BR Code, checked when made: a static code has ``key``, a dynamic
    one ``url`` (the location without its scheme). ``amount`` is in centavos (``None``: the
    payer types it). ``txid`` is 62.05 (``None``: ``***``). ``point_of_initiation`` is what 01
    says: optional for a static code (``None`` or ``"11"``), always ``"12"`` for a dynamic one.
    ``others`` are root fields Pix does not define, ``additional`` sub-fields of 62 other than
    the txid: kept as found, written back in tag order.

    ``BrCode.static`` and ``BrCode.dynamic`` take what a person types (a key with its dots,
    accented names) and normalize it; the constructor takes values as a BR Code holds them."""

    name: str
    city: str
    key: str | None = None
    url: str | None = None
    amount: int | None = None
    txid: str | None = None
    description: str | None = None
    mcc: str = "0000"
    point_of_initiation: str | None = None
    others: tuple[DataObject, ...] = field(default=(), repr=False)
    additional: tuple[DataObject, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.txid == NO_TXID:
            object.__setattr__(self, "txid", None)
        if self.url is not None and self.point_of_initiation is None:
            object.__setattr__(self, "point_of_initiation", DYNAMIC)
        _check(self)

    @classmethod
    def static(
        cls,
        key: str,
        name: str,
        city: str,
        *,
        amount: int | None = None,
        txid: str | None = None,
        description: str | None = None,
        mcc: str = "0000",
    ) -> BrCode:
        """A static code for ``key`` as typed (``parse_key``), the name and the city normalized
        (``normalize``); a description is normalized too, but not cut."""
        try:
            value = parse_key(key).value
        except InvalidPixKey as exc:
            raise BrCodeError("26.01", f"key: {exc.detail}") from None
        return cls(
            name=_normalized(name, MAX_NAME, "59"),
            city=_normalized(city, MAX_CITY, "60"),
            key=value,
            amount=amount,
            txid=txid,
            description=None if description is None else _normalized(description, None, "26.02"),
            mcc=mcc,
        )

    @classmethod
    def dynamic(
        cls, url: str, name: str, city: str, *, amount: int | None = None, mcc: str = "0000"
    ) -> BrCode:
        """A dynamic code for the location ``url`` (without its scheme), the name and the city
        normalized. Its txid is ``***``: the payer takes the charge's txid (26 to 35 characters,
        ``check_txid``) and amount from the location's payload."""
        return cls(
            name=_normalized(name, MAX_NAME, "59"),
            city=_normalized(city, MAX_CITY, "60"),
            url=url,
            amount=amount,
            mcc=mcc,
        )

    @property
    def is_dynamic(self) -> bool:
        return self.url is not None

    def encode(self) -> str:
        """The payload ("copia e cola"): the fields in tag order, closed by the CRC (63)."""
        root = [
            DataObject("00", FORMAT),
            DataObject("26", emv.write(self._account(), "26")),
            DataObject("52", self.mcc),
            DataObject("53", CURRENCY),
            DataObject("58", COUNTRY),
            DataObject("59", self.name),
            DataObject("60", self.city),
            DataObject("62", emv.write(self._additional(), "62")),
            *self.others,
        ]
        if self.point_of_initiation is not None:
            root.append(DataObject("01", self.point_of_initiation))
        if self.amount is not None:
            root.append(DataObject("54", format_amount(self.amount)))
        payload = emv.with_crc(emv.write(sorted(root)))
        if len(payload) > emv.MAX_PAYLOAD:
            raise BrCodeError(
                "", f"the code is {len(payload)} characters; a BR Code is at most {emv.MAX_PAYLOAD}"
            )
        return payload

    def _account(self) -> list[DataObject]:
        account = [DataObject("00", PIX_GUI)]
        if self.key is not None:
            account.append(DataObject("01", self.key))
        if self.description is not None:
            account.append(DataObject("02", self.description))
        if self.url is not None:
            account.append(DataObject("25", self.url))
        return account

    def _additional(self) -> list[DataObject]:
        return sorted([DataObject("05", self.txid or NO_TXID), *self.additional])


def decode(payload: str) -> BrCode:
    """The ``BrCode`` the payload holds, every rule checked: the structure (tags, lengths, 00
    first and 63 last), the CRC, the mandatory fields and their values. ``BrCodeError`` names
    the first field at fault."""
    if not payload:
        raise BrCodeError("", "the code is empty")
    if len(payload) > emv.MAX_PAYLOAD:
        raise BrCodeError(
            "", f"the code is {len(payload)} characters; a BR Code is at most {emv.MAX_PAYLOAD}"
        )
    objects = emv.read(payload)
    _check_ends(objects)
    crc = check_crc(payload)
    if not crc.holds:
        raise BrCodeError("63", f"CRC: computed {crc.computed}, found {crc.found}")
    root = dict(objects)
    for tag in ("26", "52", "53", "58", "59", "60", "62"):
        if tag not in root:
            raise BrCodeError(tag, f"{emv.name(tag)} is missing")
    _expect(root, "00", FORMAT, "a BR Code's")
    _expect(root, "53", CURRENCY, "Pix's (BRL)")
    _expect(root, "58", COUNTRY, "Pix's")
    account = _account_of(root["26"])
    located = "25" in account and "01" not in account  # a location URL, not a key: dynamic
    if located and "01" not in root:
        raise BrCodeError(
            "01", "point of initiation method is missing; a dynamic code (26.25) says 12"
        )
    additional = dict(emv.read(root["62"], "62"))
    if "05" not in additional:
        raise BrCodeError("62.05", "txid is missing (a code without one says ***)")
    return BrCode(
        name=root["59"],
        city=root["60"],
        key=account.get("01"),
        url=account.get("25"),
        amount=None if "54" not in root else parse_amount(root["54"]),
        txid=additional.pop("05"),
        description=account.get("02"),
        mcc=root["52"],
        point_of_initiation=root.get("01"),
        others=tuple(o for o in objects if o.tag not in ROOT_TAGS),
        additional=tuple(DataObject(t, v) for t, v in additional.items()),
    )


def _check_ends(objects: list[DataObject]) -> None:
    first, last = objects[0], objects[-1]
    if first.tag != "00":
        raise BrCodeError(
            "00", f"payload format indicator must come first; the code starts with {first.tag}"
        )
    if last.tag != emv.CRC:
        raise BrCodeError("63", f"CRC must come last; the code ends with {last.tag}")
    if not re.fullmatch(r"[0-9A-Fa-f]{4}", last.value):
        raise BrCodeError("63", f"CRC {last.value!r} is not 4 hexadecimal digits")


def _expect(root: dict[str, str], tag: str, value: str, whose: str) -> None:
    if root[tag] != value:
        raise BrCodeError(tag, f"{emv.name(tag)} is {root[tag]!r}; {whose} is {value}")


def _account_of(value: str) -> dict[str, str]:
    account = dict(emv.read(value, "26"))
    gui = account.get("00")
    if gui is None:
        raise BrCodeError("26.00", f"GUI is missing; a Pix code's is {PIX_GUI}")
    if gui.lower() != PIX_GUI:
        raise BrCodeError("26.00", f"GUI is {gui!r}; a Pix code's is {PIX_GUI}")
    for tag in account:
        if tag not in ACCOUNT_TAGS:
            raise BrCodeError(
                f"26.{tag}",
                "is not a field of Pix's merchant account information "
                "(00 GUI, 01 key, 02 description, 25 location URL)",
            )
    return account


# --- the rules of each field ---------------------------------------------------------------


def _check(code: BrCode) -> None:
    _check_account(code)
    if not re.fullmatch(r"[0-9]{4}", code.mcc):
        raise BrCodeError("52", f"merchant category code {code.mcc!r} is not 4 digits")
    if code.amount is not None:
        _check_amount(code.amount)
    _check_text("59", "merchant name", code.name, MAX_NAME)
    _check_text("60", "merchant city", code.city, MAX_CITY)
    _check_point_of_initiation(code)
    _check_code_txid(code)
    for tag, _ in code.others:
        if not re.fullmatch(r"[0-9]{2}", tag) or tag in ROOT_TAGS:
            raise BrCodeError(tag, "is not a field to keep among the others")
    for tag, _ in code.additional:
        if not re.fullmatch(r"[0-9]{2}", tag) or tag == "05":
            raise BrCodeError(f"62.{tag}", "is not a sub-field to keep among the others")
    code.encode()  # the lengths of the templates and of the whole code


def _check_account(code: BrCode) -> None:
    if (code.key is None) == (code.url is None):
        raise BrCodeError(
            "26",
            "merchant account information holds a key (01, a static code) or a location URL "
            f"(25, a dynamic code); this one holds {'both' if code.key else 'neither'}",
        )
    if code.key is not None:
        try:
            key_kind(code.key)
        except InvalidPixKey as exc:
            raise BrCodeError("26.01", f"key: {exc.detail}") from None
    if code.url is not None:
        _check_url(code.url)
    if code.description is not None:
        _check_text("26.02", "description", code.description, 72)


def _check_url(url: str) -> None:
    _, separator, rest = url.partition("://")
    if separator:
        raise BrCodeError("26.25", f"location URL is written without its scheme: {rest}, not {url}")
    if len(url) > 77:
        raise BrCodeError("26.25", f"location URL is {len(url)} characters; at most 77")
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:[0-9]+)?/[!-~]*", url):
        raise BrCodeError(
            "26.25",
            f"location URL {url!r} is not a host and a path, such as pix.example.com/qr/v2/...",
        )


def _check_text(path: str, what: str, value: str, limit: int) -> None:
    if not value:
        raise BrCodeError(path, f"{what} is empty")
    if len(value) > limit:
        raise BrCodeError(path, f"{what} is {len(value)} characters; at most {limit}")
    wrong = [c for c in value if not _ALLOWED.fullmatch(c)]
    if wrong:
        raise BrCodeError(
            path,
            f"{what} {value!r} has {wrong[0]!r}, which a BR Code does not take: letters "
            "without accents, digits, spaces and ASCII punctuation",
        )


_ALLOWED = re.compile(r"[ -~]")
"""EMV's alphanumeric special characters: printable ASCII."""


def _check_point_of_initiation(code: BrCode) -> None:
    said = code.point_of_initiation
    if said not in (None, STATIC, DYNAMIC):
        raise BrCodeError(
            "01", f"point of initiation method is {said!r}; 11 (static) or 12 (dynamic)"
        )
    if code.is_dynamic and said != DYNAMIC:
        raise BrCodeError(
            "01",
            "point of initiation method is 11 but 26 holds a location URL: a dynamic code says 12",
        )
    if not code.is_dynamic and said == DYNAMIC:
        raise BrCodeError(
            "01",
            "point of initiation method is 12 (dynamic) but 26 holds a key, not a location "
            "URL (25): a static code says 11 or nothing",
        )


def _check_code_txid(code: BrCode) -> None:
    """A static code's txid: letters and digits, at most 25. A dynamic code's 62.05 is not the
    charge's txid (the payer takes that from the location) and should say ***; any reference
    label of at most 25 characters is taken, as the manual's own example writes one."""
    if code.txid is None:
        return
    if code.is_dynamic:
        _check_text("62.05", "txid", code.txid, MAX_TXID)
    else:
        check_txid(code.txid, dynamic=False)


def check_txid(txid: str, *, dynamic: bool) -> str:
    """``txid`` if it is one: letters (a–z, A–Z) and digits only; at most 25 for a static
    code (62.05), 26 to 35 for a dynamic charge (the one its location's payload carries)."""
    low, high = CHARGE_TXID if dynamic else (1, MAX_TXID)
    kind = "a dynamic charge's" if dynamic else "a static code's"
    if not re.fullmatch(r"[A-Za-z0-9]*", txid):
        wrong = next(c for c in txid if not re.fullmatch(r"[A-Za-z0-9]", c))
        raise BrCodeError("62.05", f"txid {txid!r} has {wrong!r}: letters and digits only")
    if not low <= len(txid) <= high:
        raise BrCodeError("62.05", f"txid is {len(txid)} characters; {kind} is {low} to {high}")
    return txid


# --- amounts -------------------------------------------------------------------------------


def parse_amount(text: str) -> int:
    """An amount in reais as field 54 writes it (``123.45``, ``123``, ``123.``), as centavos:
    more than zero, at most two decimals and 9999999999.99."""
    if text.startswith("-"):
        raise BrCodeError("54", f"transaction amount {text} must be more than zero")
    if re.fullmatch(r"[0-9]+,[0-9]*", text):
        raise BrCodeError(
            "54",
            f"transaction amount {text}: the decimal mark is a point ({text.replace(',', '.')})",
        )
    parts = re.fullmatch(r"[0-9]+(?:\.([0-9]*))?", text)
    if parts is None:
        raise BrCodeError(
            "54",
            f"transaction amount {text!r} is not an amount such as 123.45 (digits and a point)",
        )
    places = len(parts.group(1) or "")
    if places > 2:
        raise BrCodeError("54", f"transaction amount {text} has {places} decimal places; at most 2")
    centavos = int(Decimal(text.rstrip(".")).scaleb(2))
    _check_amount(centavos)
    return centavos


def _check_amount(centavos: int) -> None:
    if centavos <= 0:
        raise BrCodeError(
            "54",
            "transaction amount must be more than zero (leave it out for the payer to type it)",
        )
    if centavos > MAX_AMOUNT:
        raise BrCodeError(
            "54", f"transaction amount is at most {format_amount(MAX_AMOUNT)} (13 characters)"
        )


def format_amount(centavos: int) -> str:
    """Centavos as field 54 writes them: reais, a point, two decimals (``123.45``)."""
    return f"{centavos // 100}.{centavos % 100:02d}"


# --- text ----------------------------------------------------------------------------------


def normalize(text: str, limit: int | None = None) -> str:
    """``text`` in the characters a BR Code takes: accents stripped (``São Paulo`` → ``Sao
    Paulo``), what has no ASCII form dropped, runs of blanks made one space, cut to ``limit``
    characters (if given) and trimmed."""
    decomposed = unicodedata.normalize("NFKD", " ".join(text.split()))
    kept = "".join(c for c in decomposed if _ALLOWED.fullmatch(c))
    return " ".join(kept.split())[:limit].rstrip()


def _normalized(text: str, limit: int | None, path: str) -> str:
    value = normalize(text, limit)
    if not value:
        raise BrCodeError(
            path, f"{emv.name(path)} {text!r} has nothing a BR Code can carry (letters, digits)"
        )
    return value
