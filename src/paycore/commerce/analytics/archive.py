"""Monthly archive on disk of every recorded order and every consumed message.

Layout under the archive directory::

    state.json                         last archived sequence per kind, open segments' sizes
    2026-11/orders/<first>.jsonl.gz    gzip segments, named by their first sequence
    2026-11/messages/<first>.jsonl.gz
    2026-11/report.json                monthly figures

A flush appends one gzip member per month and kind to that kind's open segment (fsync), or
starts a new segment (temp file, fsync, rename) for another month or once the open one holds
``segment_bytes``; then it writes ``state.json`` with the new sequences and the open segments'
sizes. After a crash, an open segment is cut back to its recorded size and segments beyond the
recorded state are deleted, so every row is archived exactly once. Readers see only what the
state records. A month's file is served as the concatenation of its segments: a valid
multi-member gzip. (Segments named ``<first>-<last>.jsonl.gz``, one per flush, are read too.)
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import (
    Any,
    NotRequired,  # pydantic needs this one on 3.11
)

import orjson
from typing_extensions import TypedDict

from paycore.commerce.domain import ARCHIVE_MONTH
from paycore.platform.failures import OperatorError

KINDS = ("orders", "messages")
MONTH = re.compile(ARCHIVE_MONTH)
SEGMENT = re.compile(r"^(\d{12})(?:-\d{12})?\.jsonl\.gz$")
SEGMENT_BYTES = 16 << 20
"""Size past which a segment is closed and the next flush of its kind starts another."""
READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class OpenSegment:
    """The segment a kind's next flush appends to (a path relative to the archive root) and
    its committed size."""

    path: str
    size: int

    @property
    def month(self) -> str:
        return self.path.split("/", 1)[0]

    def saved(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size}


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    name: str
    size: int


def month_of(moment: datetime) -> str:
    """The UTC calendar month; a naive value is taken as UTC."""
    utc = as_utc(moment)
    return f"{utc.year:04d}-{utc.month:02d}"  # strftime costs 10 times more, once per record


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class ArchivedLine(TypedDict):
    product: str
    quantity: int
    unitCents: int


class ArchivedOrder(TypedDict):
    orderId: int
    customerId: int
    totalCents: int
    itemCount: int
    orderedAt: str
    source: str
    messageId: str
    items: list[ArchivedLine]


class ArchivedMessage(TypedDict):
    seq: int
    messageId: str
    topic: str
    receivedAt: str
    body: NotRequired[str]  # UTF-8 text …
    bodyBase64: NotRequired[str]  # … or any other bytes


class MonthlyReport(TypedDict):
    month: str
    orders: int
    totalCents: int
    items: int
    customers: int
    messages: int
    generatedAt: str


Record = ArchivedOrder | ArchivedMessage


class Archive:
    def __init__(self, root: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.root = root
        self.segment_bytes = segment_bytes
        self._state: dict[str, int] | None = None
        self._open: dict[str, OpenSegment] = {}  # as committed
        self._appended: dict[str, OpenSegment] = {}  # by writes not yet committed
        self.stale_reports: set[str] = set()  # months archived since their report was written
        self._writer: int | None = None  # the lock file held by ``claim``

    # --- writing ---------------------------------------------------------------------------

    def claim(self) -> None:
        """Make this process the archive's only writer for as long as it lives (an exclusive
        lock on ``.writer`` in its folder, gone with the process); an ``OperatorError`` if
        another process writes it: two writers would archive every row twice."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".writer", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OperatorError(
                f"the commerce archive {self.root} is written by another analytics worker; "
                "give each analytics worker a data folder of its own (PAYCORE_DATA_DIR)"
            ) from None
        self._writer = fd  # kept open: the lock lasts as long as the process

    def state(self) -> dict[str, int]:
        """Last archived sequence per kind; on first use, undoes what an unfinished flush wrote."""
        if self._state is None:
            path = self.root / "state.json"
            saved = orjson.loads(path.read_bytes()) if path.exists() else {}
            self._state = {kind: int(saved.get(kind, 0)) for kind in KINDS}
            self._open = {
                kind: OpenSegment(str(entry["path"]), int(entry["size"]))
                for kind, entry in saved.get("open", {}).items()
                if kind in KINDS
            }
            self._drop_unfinished()
            self.stale_reports |= self._outdated_reports()
        return self._state

    def write(self, kind: str, rows: Sequence[tuple[int, datetime, Record]]) -> set[str]:
        """Append rows ``(seq, moment, record)`` (ascending seq) to their months' segments; the
        new state is recorded only by ``commit``. Returns the months touched."""
        self.state()
        by_month: dict[str, list[tuple[int, Record]]] = {}
        for seq, moment, record in rows:
            by_month.setdefault(month_of(moment), []).append((seq, record))
        for month, items in sorted(by_month.items()):
            payload = b"".join(orjson.dumps(record) + b"\n" for _, record in items)
            member = gzip.compress(payload, compresslevel=1)
            current = self._appended.get(kind) or self._open.get(kind)
            if current is not None and current.month == month and current.size < self.segment_bytes:
                _append(self.root / current.path, member)
                written = OpenSegment(current.path, current.size + len(member))
            else:
                folder = self.root / month / kind
                folder.mkdir(parents=True, exist_ok=True)
                name = f"{items[0][0]:012d}.jsonl.gz"
                _atomic_write(folder / name, member)
                written = OpenSegment(f"{month}/{kind}/{name}", len(member))
            if current is None or month >= current.month:  # the latest month stays open
                self._appended[kind] = written
        return set(by_month)

    def commit(self, last: dict[str, int]) -> None:
        state = self.state()
        opened = self._open | self._appended
        saved = {**state, **last, "open": {k: s.saved() for k, s in opened.items()}}
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.root / "state.json", orjson.dumps(saved))
        state.update(last)
        self._open, self._appended = opened, {}

    def write_report(self, month: str, report: MonthlyReport) -> None:
        (self.root / month).mkdir(parents=True, exist_ok=True)
        _atomic_write(
            self.root / month / "report.json", orjson.dumps(report, option=orjson.OPT_INDENT_2)
        )

    def _drop_unfinished(self) -> None:
        assert self._state is not None
        for kind in KINDS:
            for segment in self.root.glob(f"*/{kind}/*.jsonl.gz"):
                match = SEGMENT.match(segment.name)
                if match and int(match.group(1)) > self._state[kind]:
                    segment.unlink()
        for kind, open_segment in list(self._open.items()):
            path = self.root / open_segment.path
            if not path.is_file():
                del self._open[kind]  # removed by hand: the next flush starts a new one
            elif path.stat().st_size > open_segment.size:
                with open(path, "r+b") as handle:
                    handle.truncate(open_segment.size)
                    os.fsync(handle.fileno())

    def _outdated_reports(self) -> set[str]:
        """Months with a segment newer than their report (a process stopped before writing
        it): their report is due with the next flush that writes reports."""
        outdated = set()
        for month in self.months():
            report = self.root / month / "report.json"
            written = report.stat().st_mtime_ns if report.exists() else -1
            segments = (s for kind in KINDS for s in self._segments(month, kind))
            if any(s.stat().st_mtime_ns > written for s in segments):
                outdated.add(month)
        return outdated

    # --- reading ---------------------------------------------------------------------------

    def months(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and MONTH.fullmatch(p.name))

    def files(self, month: str) -> list[ArchivedFile]:
        if not MONTH.fullmatch(month) or not (self.root / month).is_dir():
            return []
        found = [
            ArchivedFile(f"{kind}.jsonl.gz", sum(self._committed_size(s) for s in segments))
            for kind in KINDS
            if (segments := self._segments(month, kind))
        ]
        report = self.root / month / "report.json"
        if report.exists():
            found.append(ArchivedFile("report.json", report.stat().st_size))
        return found

    def read(self, month: str, name: str) -> Iterator[bytes] | None:
        """The bytes of one archived file, in chunks; None when there is no such file."""
        if not MONTH.fullmatch(month):
            return None
        if name == "report.json":
            path = self.root / month / name
            return iter([path.read_bytes()]) if path.exists() else None
        kind = name.removesuffix(".jsonl.gz")
        if kind not in KINDS or not name.endswith(".jsonl.gz"):
            return None
        segments = self._segments(month, kind)
        return self._chunks(segments) if segments else None

    def records(self, month: str, kind: str) -> list[dict[str, Any]]:
        """Every archived record of a month and kind (for reports and tests)."""
        chunks = self.read(month, f"{kind}.jsonl.gz")
        if chunks is None:
            return []
        text = gzip.decompress(b"".join(chunks))
        return [orjson.loads(line) for line in text.splitlines() if line]

    def _committed_size(self, segment: Path) -> int:
        """A segment's size as the state records it: bytes a flush appended to the open
        segment count only once that flush has committed."""
        relative = segment.relative_to(self.root).as_posix()
        for open_segment in self._open.values():
            if open_segment.path == relative:
                return open_segment.size
        return segment.stat().st_size

    def _chunks(self, segments: list[Path]) -> Iterator[bytes]:
        for segment in segments:
            left = self._committed_size(segment)
            with open(segment, "rb") as handle:
                while left > 0 and (chunk := handle.read(min(READ_CHUNK, left))):
                    left -= len(chunk)
                    yield chunk

    def _segments(self, month: str, kind: str) -> list[Path]:
        folder = self.root / month / kind
        if not folder.is_dir():
            return []
        state = self.state()[kind]
        return sorted(
            p for p in folder.iterdir() if (m := SEGMENT.match(p.name)) and int(m.group(1)) <= state
        )


def message_record(
    seq: int, message_id: str, topic: str, received_at: datetime, body: bytes
) -> ArchivedMessage:
    record: ArchivedMessage = {
        "seq": seq,
        "messageId": message_id,
        "topic": topic,
        "receivedAt": as_utc(received_at).isoformat(),
    }
    try:
        record["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        record["bodyBase64"] = base64.b64encode(body).decode()
    return record


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
