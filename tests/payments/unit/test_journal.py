"""The accept journal: what one process appends, the next one reads back; a segment is deleted
once every payment in it is committed and it no longer takes writes (emptied while it does);
lines cut short or not a payment are left out, loudly; instances sharing a directory never read
each other's."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest

from paycore.payments.domain import Payment
from paycore.payments.journal import Journal
from paycore.platform.failures import OperatorError


def payments(count: int) -> list[Payment]:
    return [Payment(str(uuid.uuid4()), 100 + n) for n in range(count)]


def test_what_a_process_appended_the_next_one_reads_back(tmp_path: Path) -> None:
    first = Journal(tmp_path, "api1")
    assert first.open() == []
    taken = payments(3)
    segments = [first.append(p) for p in taken]
    # no close: the process was killed after its writes
    second = Journal(tmp_path, "api1")
    left = second.open()
    assert [p for p, _ in left] == taken
    assert {segment for _, segment in left} == set(segments)
    assert second.append(payments(1)[0]) > max(segments)  # its writes go to a new segment


def test_a_segment_goes_once_its_payments_are_committed_and_it_takes_no_more(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, "api1", segment_bytes=80)  # two lines (41 bytes each) fill one
    journal.open()
    taken = payments(5)
    segments = [journal.append(p) for p in taken]
    assert segments == [1, 1, 2, 2, 3]
    assert len(journal.segments) == 3
    journal.committed(1)
    assert len(journal.segments) == 3  # one of its payments is not committed yet
    journal.committed(1)
    assert [p.name for p in journal.segments] == ["api1.2.journal", "api1.3.journal"]
    assert not (tmp_path / "api1.1.journal").exists()
    for segment in segments[2:]:
        journal.committed(segment)
    assert [p.name for p in journal.segments] == ["api1.3.journal"]  # still taking writes
    assert (tmp_path / "api1.3.journal").stat().st_size == 0  # emptied: nothing to record
    journal.committed(journal.append(taken[0]))
    assert journal.append(taken[1]) == 3
    assert (tmp_path / "api1.3.journal").read_text() == (  # written from its start again
        f"{taken[1].correlation_id} {taken[1].amount_cents}\n"
    )
    journal.committed(3)
    journal.close()
    assert list(tmp_path.iterdir()) == []


def test_segments_with_payments_not_committed_outlive_a_clean_stop(tmp_path: Path) -> None:
    journal = Journal(tmp_path, "api1")
    journal.open()
    kept, done = payments(2)
    journal.append(kept)
    journal.committed(journal.append(done))
    journal.close()
    assert [p for p, _ in Journal(tmp_path, "api1").open()] == [kept, done]


def test_what_was_read_back_goes_once_committed(tmp_path: Path) -> None:
    first = Journal(tmp_path, "api1")
    first.open()
    for payment in payments(2):
        first.append(payment)
    second = Journal(tmp_path, "api1")
    left = second.open()
    for _, segment in left:
        second.committed(segment)
    assert [p.name for p in second.segments] == ["api1.2.journal"]


def test_a_segment_that_cannot_be_started_leaves_the_journal_writing_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path, "api1", segment_bytes=40)  # one line fills a segment
    journal.open()
    first, second, third = payments(3)
    assert journal.append(first) == 1
    real_open = os.open

    def no_room(*args: object, **kwargs: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "open", no_room)
    with pytest.raises(OSError, match="No space left"):
        journal.append(second)
    monkeypatch.setattr(os, "open", real_open)
    assert journal.append(third) == 2
    assert [p for p, _ in Journal(tmp_path, "api1").open()] == [first, third]


def test_lines_cut_short_or_not_payments_are_left_out_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = payments(2)
    (tmp_path / "api1.4.journal").write_bytes(
        f"{good[0].correlation_id} {good[0].amount_cents}\n".encode()
        + b"not-a-uuid 100\n"
        + f"{uuid.uuid4()} 0\n".encode()
        + f"{uuid.uuid4()} 12.5\n".encode()
        + f"{good[1].correlation_id} {good[1].amount_cents}\n".encode()
        + str(uuid.uuid4()).encode()[:20]
    )
    with caplog.at_level(logging.WARNING):
        left = Journal(tmp_path, "api1").open()
    assert left == [(good[0], 4), (good[1], 4)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("journal line not a payment, left out") == 3
    assert messages.count("journal line cut short, left out") == 1


def test_instances_sharing_a_directory_read_their_own_only(tmp_path: Path) -> None:
    one, two = Journal(tmp_path, "api1"), Journal(tmp_path, "api1-b")
    one.open()
    two.open()
    mine, theirs = payments(2)
    one.append(mine)
    two.append(theirs)
    (tmp_path / "api1.x.journal").write_text("not a segment of ours\n")
    assert [p for p, _ in Journal(tmp_path, "api1").open()] == [mine]
    assert [p for p, _ in Journal(tmp_path, "api1-b").open()] == [theirs]


def test_a_directory_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OperatorError, match=r"PAYCORE_PAYMENTS_JOURNAL: cannot create .*file"):
        Journal(blocker / "journal", "api1").open()


def test_a_line_outlives_the_process_that_wrote_it(tmp_path: Path) -> None:
    """The line is in the file (the operating system's) once ``append`` returns: a child
    process appends and is killed before anything else runs; its payment is read back."""
    payment = payments(1)[0]
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        journal = Journal(tmp_path, "api1")
        journal.open()
        journal.append(payment)
        os.kill(os.getpid(), 9)
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == 9
    assert [p for p, _ in Journal(tmp_path, "api1").open()] == [payment]
