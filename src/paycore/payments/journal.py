"""The accept journal (``accept=local`` with ``PAYCORE_PAYMENTS_JOURNAL``): an API instance
appends each payment it takes to a file of its own before the 202, and records it in the
database by group commit afterwards (ADR 0021).

One ``write`` puts the line in the operating system's page cache: from then on the payment
survives a SIGKILL of the process (what a 202 promises), without waiting for the database's
commit and fsync, which follow a few milliseconds later. A process that starts again reads what
its predecessor journaled and records it, skipping what was committed already.

The journal is a series of segment files, ``<instance>.<n>.journal``, each line one payment
(``<correlationId> <amount in cents>``). A segment is deleted once every payment in it is
committed and a newer one takes the writes, emptied if it still takes them; a segment grows to
``SEGMENT_BYTES`` at most.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from paycore.payments.domain import InvalidPayment, Payment, checked_cents, checked_id
from paycore.platform.failures import OperatorError

log = logging.getLogger(__name__)

SEGMENT_BYTES = 1 << 20


@dataclass(slots=True)
class _Segment:
    path: Path
    open: int = 0
    """Payments written to it and not yet committed to the database."""


class Journal:
    """The journal of one instance in ``directory``."""

    def __init__(self, directory: Path, instance: str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.instance = instance
        self.segment_bytes = segment_bytes
        self._segments: dict[int, _Segment] = {}
        self._active = 0
        self._fd = -1
        self._size = 0

    def open(self) -> list[tuple[Payment, int]]:
        """Start a new segment for this process's writes; returns what the segments of a
        process before it hold (each payment with its segment, for ``committed``)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OperatorError(
                f"PAYCORE_PAYMENTS_JOURNAL: cannot create {self.directory}: {exc}"
            ) from exc
        left: list[tuple[Payment, int]] = []
        for number, path in sorted(self._found().items()):
            payments = _read(path)
            self._segments[number] = _Segment(path, len(payments))
            left += [(payment, number) for payment in payments]
            self._active = number
        for number, segment in list(self._segments.items()):
            if not segment.open:
                self._drop(number)
        self._start(self._active + 1)
        return left

    def append(self, payment: Payment) -> int:
        """Write ``payment``; returns its segment. Once this returns, the line is the
        operating system's: it outlives this process."""
        if self._size >= self.segment_bytes:
            self._rotate()
        line = f"{payment.correlation_id} {payment.amount_cents}\n".encode()
        written = os.write(self._fd, line)
        if written != len(line):  # a regular file takes a line this small whole, or fails
            raise OSError(f"journal {self._segments[self._active].path}: short write")
        self._size += written
        self._segments[self._active].open += 1
        return self._active

    def committed(self, segment: int) -> None:
        """A payment written to ``segment`` is in the database now. A segment whose payments
        are all committed is deleted, or emptied if it takes the writes: a process started
        later must not record again what was committed and then purged."""
        kept = self._segments[segment]
        kept.open -= 1
        if kept.open:
            return
        if segment != self._active:
            self._drop(segment)
        elif self._size:
            os.ftruncate(self._fd, 0)
            self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._active in self._segments and not self._segments[self._active].open:
            self._drop(self._active)

    @property
    def segments(self) -> list[Path]:
        """The segment files kept (oldest first)."""
        return [self._segments[n].path for n in sorted(self._segments)]

    def _found(self) -> dict[int, Path]:
        found = {}
        for path in self.directory.glob(f"{self.instance}.*.journal"):
            number = path.name[len(self.instance) + 1 : -len(".journal")]
            if number.isdigit():
                found[int(number)] = path
        return found

    def _start(self, number: int) -> None:
        path = self.directory / f"{self.instance}.{number}.journal"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments[number] = _Segment(path)
        self._active, self._size = number, 0

    def _rotate(self) -> None:
        before, written = self._active, self._fd
        self._start(before + 1)  # if it cannot, the journal stays as it was
        os.close(written)
        if not self._segments[before].open:
            self._drop(before)

    def _drop(self, number: int) -> None:
        self._segments.pop(number).path.unlink(missing_ok=True)


def _read(path: Path) -> list[Payment]:
    """The payments in a segment. A line cut short (the machine stopped while it was being
    written: its payment was never answered) or not a payment is logged and left out."""
    payments = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines[-1]:
        log.warning("journal line cut short, left out", extra={"file": str(path)})
    for line in lines[:-1]:
        try:
            correlation_id, amount = line.split(" ")
            payments.append(Payment(checked_id(correlation_id), checked_cents(int(amount))))
        except (ValueError, InvalidPayment):
            log.warning("journal line not a payment, left out", extra={"file": str(path)})
    return payments
