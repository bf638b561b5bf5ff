"""Monthly archive of recorded orders and consumed messages: exactly once, per UTC month,
listable and downloadable, crash-safe, and closed to path traversal."""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.commerce.analytics import service as analytics_service
from paycore.commerce.analytics import store as analytics_store
from paycore.commerce.analytics.archive import Archive, message_record, month_of
from paycore.commerce.domain import Order, OrderLine
from paycore.platform.failures import OperatorError
from paycore.platform.persistence.uow import Database


async def _order(
    engine: AsyncEngine, order_id: int, customer_id: int, at: datetime, *lines: tuple[str, int, int]
) -> Order:
    order = Order(order_id, customer_id, tuple(OrderLine(*line) for line in lines), at)
    async with Database(engine).transaction() as tx:
        await analytics_store.record_orders(tx, [(order, f"m-{order_id}")], source="commerce")
    return order


async def _message(engine: AsyncEngine, message_id: str, at: datetime, body: bytes = b"{}") -> None:
    async with Database(engine).transaction() as tx:
        await analytics_store.record_messages(
            tx, [(message_id, body)], topic="commerce.order-created", at=at
        )


def _utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def _two_months(engine: AsyncEngine) -> None:
    await _order(engine, 1, 10, _utc(2026, 1, 5, 10), ("pen", 2, 150))
    await _order(engine, 2, 20, datetime(2026, 1, 31, 23, 59, 59, 999_000, UTC), ("book", 1, 2_000))
    await _order(engine, 3, 10, _utc(2026, 2, 1), ("pen", 10, 150))
    await _message(engine, "msg-a", _utc(2026, 1, 3), b'{"a":1}')
    await _message(engine, "msg-b", _utc(2026, 2, 1, 0, 0, 1), b'{"b":2}')
    await _message(engine, "msg-c", _utc(2026, 1, 20), b"\xff\x00binary")


def _ids(archive: Archive, kind: str, key: str) -> list[Any]:
    return [r[key] for month in archive.months() for r in archive.records(month, kind)]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _report(archive: Archive, month: str) -> dict[str, Any]:
    chunks = archive.read(month, "report.json")
    assert chunks is not None
    return orjson.loads(b"".join(chunks))


async def test_flush_archives_every_row_once_in_its_month(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await _two_months(engine)
    archive = Archive(tmp_path / "archive")

    assert await analytics_service.flush_archive(Database(engine), archive) == 6

    assert archive.months() == ["2026-01", "2026-02"]
    assert [r["orderId"] for r in archive.records("2026-01", "orders")] == [1, 2]
    assert [r["orderId"] for r in archive.records("2026-02", "orders")] == [3]
    assert [r["messageId"] for r in archive.records("2026-01", "messages")] == ["msg-a", "msg-c"]
    assert [r["messageId"] for r in archive.records("2026-02", "messages")] == ["msg-b"]

    first = archive.records("2026-01", "orders")[0]
    assert first == {
        "orderId": 1,
        "customerId": 10,
        "totalCents": 300,
        "itemCount": 2,
        "orderedAt": "2026-01-05T10:00:00+00:00",
        "source": "commerce",
        "messageId": "m-1",
        "items": [{"product": "pen", "quantity": 2, "unitCents": 150}],
    }
    messages = {r["messageId"]: r for r in archive.records("2026-01", "messages")}
    assert messages["msg-a"]["body"] == '{"a":1}'
    assert messages["msg-a"]["topic"] == "commerce.order-created"
    assert base64.b64decode(messages["msg-c"]["bodyBase64"]) == b"\xff\x00binary"
    assert "body" not in messages["msg-c"]


async def test_files_read_and_report(engine: AsyncEngine, tmp_path: Path) -> None:
    await _two_months(engine)
    archive = Archive(tmp_path / "archive")
    await analytics_service.flush_archive(Database(engine), archive)

    files = {f.name: f.size for f in archive.files("2026-01")}
    assert set(files) == {"orders.jsonl.gz", "messages.jsonl.gz", "report.json"}
    for name, size in files.items():
        chunks = archive.read("2026-01", name)
        assert chunks is not None
        assert len(b"".join(chunks)) == size > 0

    january = _report(archive, "2026-01")
    assert {k: v for k, v in january.items() if k != "generatedAt"} == {
        "month": "2026-01",
        "orders": 2,
        "totalCents": 300 + 2_000,
        "items": 3,
        "customers": 2,
        "messages": 2,
    }
    february = _report(archive, "2026-02")
    assert (february["orders"], february["totalCents"], february["items"]) == (1, 1_500, 10)
    assert (february["customers"], february["messages"]) == (1, 1)


async def test_download_of_several_segments_is_one_gzip_stream(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await _two_months(engine)
    archive = Archive(tmp_path / "archive")
    await analytics_service.flush_archive(Database(engine), archive)
    await _order(engine, 4, 30, _utc(2026, 1, 15), ("ink", 3, 500))
    await _message(engine, "msg-d", _utc(2026, 1, 16))
    assert await analytics_service.flush_archive(Database(engine), archive) == 2

    segments = sorted(p.name for p in (tmp_path / "archive" / "2026-01" / "orders").iterdir())
    assert len(segments) == 2
    chunks = archive.read("2026-01", "orders.jsonl.gz")
    assert chunks is not None
    lines = gzip.decompress(b"".join(chunks)).splitlines()
    assert [orjson.loads(line)["orderId"] for line in lines] == [1, 2, 4]

    report = _report(archive, "2026-01")
    assert (report["orders"], report["totalCents"], report["messages"]) == (3, 3_800, 3)
    assert _report(archive, "2026-02")["orders"] == 1  # untouched month unchanged


async def test_small_batches_still_archive_each_row_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    for i in range(1, 8):
        await _order(engine, i, i % 3 + 1, _utc(2026, 1 + i % 2, i), ("pen", i, 100))
        await _message(engine, f"msg-{i}", _utc(2026, 1 + i % 2, i))
    archive = Archive(tmp_path / "archive")
    assert await analytics_service.flush_archive(Database(engine), archive, batch=2) == 14
    assert Counter(_ids(archive, "orders", "orderId")) == Counter(range(1, 8))
    assert sorted(_ids(archive, "messages", "messageId")) == sorted(f"msg-{i}" for i in range(1, 8))
    for month in archive.months():
        for record in archive.records(month, "orders"):
            assert month_of(datetime.fromisoformat(record["orderedAt"])) == month


async def test_second_flush_without_new_rows_writes_nothing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await _two_months(engine)
    root = tmp_path / "archive"
    await analytics_service.flush_archive(Database(engine), Archive(root))
    before = _tree(root)
    assert await analytics_service.flush_archive(Database(engine), Archive(root)) == 0
    archive = Archive(root)
    assert await analytics_service.flush_archive(Database(engine), archive) == 0
    assert await analytics_service.flush_archive(Database(engine), archive) == 0
    assert _tree(root) == before


async def test_flush_of_an_empty_database(engine: AsyncEngine, tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    assert await analytics_service.flush_archive(Database(engine), archive) == 0
    assert archive.months() == []
    assert archive.files("2026-01") == []
    assert archive.read("2026-01", "orders.jsonl.gz") is None


async def test_crash_after_writing_a_segment_before_commit(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await _two_months(engine)
    root = tmp_path / "archive"
    await analytics_service.flush_archive(Database(engine), Archive(root))

    # the process that crashes: it writes segments for the pending rows, never commits
    crashed = Archive(root)
    await _order(engine, 4, 30, _utc(2026, 1, 15), ("ink", 3, 500))
    await _message(engine, "msg-d", _utc(2026, 1, 16))
    async with engine.connect() as conn:
        heads = await analytics_store.orders_after(conn, crashed.state()["orders"], 100)
        msgs = await analytics_store.messages_after(conn, crashed.state()["messages"], 100)
    assert [h.order_id for h in heads] == [4]
    crashed.write("orders", [(h.seq, h.ordered_at, {"orderId": h.order_id}) for h in heads])
    crashed.write(
        "messages",
        [
            (m.seq, m.received_at, message_record(m.seq, m.message_id, m.topic, m.received_at, b""))
            for m in msgs
        ],
    )
    # more rows arrive while it is down, so the next segments cover a different range
    await _order(engine, 5, 30, _utc(2026, 1, 17), ("ink", 1, 500))
    await _order(engine, 6, 40, _utc(2026, 3, 1), ("pen", 1, 150))
    await _message(engine, "msg-e", _utc(2026, 1, 18))

    restarted = Archive(root)  # a fresh process on the same directory
    assert await analytics_service.flush_archive(Database(engine), restarted) == 5

    assert Counter(_ids(restarted, "orders", "orderId")) == Counter([1, 2, 3, 4, 5, 6])
    assert Counter(_ids(restarted, "messages", "messageId")) == Counter(
        ["msg-a", "msg-b", "msg-c", "msg-d", "msg-e"]
    )
    assert [r["orderId"] for r in restarted.records("2026-01", "orders")] == [1, 2, 4, 5]
    assert all("customerId" in r for r in restarted.records("2026-01", "orders"))
    assert _report(restarted, "2026-01")["orders"] == 4
    assert _report(restarted, "2026-03")["orders"] == 1
    # and what a reader in yet another process sees is the same
    assert Counter(_ids(Archive(root), "orders", "orderId")) == Counter([1, 2, 3, 4, 5, 6])


class _CrashOnCommit(Archive):
    def commit(self, last: dict[str, int]) -> None:
        raise RuntimeError("power cut")


async def test_crash_inside_flush_before_commit(engine: AsyncEngine, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    await _order(engine, 1, 10, _utc(2026, 1, 5), ("pen", 2, 150))
    await _message(engine, "msg-a", _utc(2026, 1, 3))
    with pytest.raises(RuntimeError, match="power cut"):
        await analytics_service.flush_archive(Database(engine), _CrashOnCommit(root))
    await _order(engine, 2, 10, _utc(2026, 1, 6), ("pen", 1, 150))

    restarted = Archive(root)
    assert await analytics_service.flush_archive(Database(engine), restarted) == 3
    assert [r["orderId"] for r in restarted.records("2026-01", "orders")] == [1, 2]
    assert [r["messageId"] for r in restarted.records("2026-01", "messages")] == ["msg-a"]
    segments = list((root / "2026-01" / "orders").iterdir())
    assert len(segments) == 1


async def test_path_traversal_is_refused(engine: AsyncEngine, tmp_path: Path) -> None:
    await _two_months(engine)
    root = tmp_path / "archive"
    archive = Archive(root)
    await analytics_service.flush_archive(Database(engine), archive)
    (tmp_path / "secret.txt").write_text("top secret")
    assert (root / "state.json").exists()

    for month, name in [
        ("../x", "orders.jsonl.gz"),
        ("..", "state.json"),
        ("2026-01", "../../state.json"),
        ("2026-01", "../state.json"),
        ("2026-01", "../../secret.txt"),
        ("2026-01", "report.json/../../state.json"),
        ("2026-01", "orders.jsonl.gz/../../../state.json"),
        ("2026-01/..", "report.json"),
        ("2026-01/../..", "secret.txt"),
        ("/etc", "passwd"),
        ("2026-01", "/etc/passwd"),
        ("2026-01", "state.json"),
        ("2026-01", "orders.jsonl"),
        ("2026-01", "other.jsonl.gz"),
        ("2026-07", "orders.jsonl.gz"),
        ("2026-07", "report.json"),
    ]:
        assert archive.read(month, name) is None, (month, name)
    for month in ["../x", "..", ".", "2026-01/..", "2026-01/../2026-01", "/etc", "", "2026-1"]:
        assert archive.files(month) == [], month
        assert archive.records(month, "orders") == [], month


async def test_months_lists_only_month_folders(engine: AsyncEngine, tmp_path: Path) -> None:
    await _two_months(engine)
    root = tmp_path / "archive"
    archive = Archive(root)
    await analytics_service.flush_archive(Database(engine), archive)
    (root / "junk").mkdir()
    (root / "2026-1").mkdir()
    (root / "2026-05.txt").write_text("x")
    assert archive.months() == ["2026-01", "2026-02"]
    assert Archive(tmp_path / "nowhere").months() == []


async def test_monthly_report_respects_month_and_year_boundaries(engine: AsyncEngine) -> None:
    await _order(engine, 1, 1, datetime(2025, 12, 31, 23, 59, 59, 999_999, UTC), ("a", 1, 100))
    await _order(engine, 2, 2, _utc(2026, 1, 1), ("a", 2, 100))
    await _order(engine, 3, 2, _utc(2025, 12, 1), ("b", 1, 1))
    await _order(engine, 4, 3, _utc(2025, 11, 30, 23, 59), ("b", 1, 7))
    december = await analytics_service.monthly_report(Database(engine), "2025-12")
    assert (december["orders"], december["totalCents"], december["items"]) == (2, 101, 2)
    assert december["customers"] == 2
    january = await analytics_service.monthly_report(Database(engine), "2026-01")
    assert (january["orders"], january["totalCents"], january["items"]) == (1, 200, 2)
    assert (await analytics_service.monthly_report(Database(engine), "2025-11"))["orders"] == 1
    assert (await analytics_service.monthly_report(Database(engine), "2026-02"))["orders"] == 0


# --- months are UTC months, whatever the timestamps' offset or the host's time zone -----------


async def test_an_order_stamped_with_another_offset_goes_to_its_utc_month(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    # 01:30 on 1 February at UTC+2 is 23:30 on 31 January UTC
    plus_two = timezone(timedelta(hours=2))
    await _order(engine, 1, 10, datetime(2026, 2, 1, 1, 30, tzinfo=plus_two), ("pen", 1, 150))
    archive = Archive(tmp_path / "archive")
    await analytics_service.flush_archive(Database(engine), archive)
    assert [r["orderId"] for r in archive.records("2026-01", "orders")] == [1]
    assert archive.records("2026-02", "orders") == []
    assert (await analytics_service.monthly_report(Database(engine), "2026-01"))["orders"] == 1


@pytest.mark.usefixtures("local_time_utc_minus_3")
async def test_months_are_utc_on_a_host_in_another_time_zone(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await _order(engine, 1, 10, _utc(2026, 1, 31, 23, 30), ("pen", 1, 150))
    await _message(engine, "msg-a", _utc(2026, 1, 31, 23, 30))
    archive = Archive(tmp_path / "archive")
    await analytics_service.flush_archive(Database(engine), archive)
    assert archive.months() == ["2026-01"]
    [record] = archive.records("2026-01", "orders")
    assert datetime.fromisoformat(record["orderedAt"]) == _utc(2026, 1, 31, 23, 30)
    [message] = archive.records("2026-01", "messages")
    assert datetime.fromisoformat(message["receivedAt"]) == _utc(2026, 1, 31, 23, 30)
    assert _report(archive, "2026-01")["orders"] == 1


async def test_reports_can_wait_for_a_later_flush_and_survive_a_restart(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await _two_months(engine)
    root = tmp_path / "archive"
    archive = Archive(root)
    assert await analytics_service.flush_archive(Database(engine), archive, reports=False) == 6
    assert archive.read("2026-01", "report.json") is None  # archived, report not yet written
    assert archive.stale_reports == {"2026-01", "2026-02"}

    # the process stops before writing them: a restarted one finds them outdated
    restarted = Archive(root)
    assert await analytics_service.flush_archive(Database(engine), restarted) == 0
    assert _report(restarted, "2026-01")["orders"] == 2
    assert _report(restarted, "2026-02")["orders"] == 1
    assert restarted.stale_reports == set()
    again = Archive(root)
    again.state()
    assert again.stale_reports == set()  # every report is now newer than its segments


def _members(data: bytes) -> int:
    """How many gzip members ``data`` holds."""
    count = 0
    while data:
        reader = zlib.decompressobj(wbits=31)
        reader.decompress(data)
        data, count = reader.unused_data, count + 1
    return count


async def test_rows_read_in_chunks_still_make_one_gzip_member_per_batch(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    for i in range(1, 8):
        await _order(engine, i, 1, _utc(2026, 3, i), ("pen", 1, 100))
        await _message(engine, f"msg-{i}", _utc(2026, 3, i))
    archive = Archive(tmp_path / "archive")
    assert await analytics_service.flush_archive(Database(engine), archive, batch=5, chunk=2) == 14
    [segment] = (tmp_path / "archive" / "2026-03" / "orders").iterdir()
    assert _members(segment.read_bytes()) == 2  # 5 rows, then 2: not one per chunk
    assert sorted(_ids(archive, "orders", "orderId")) == list(range(1, 8))
    assert sorted(_ids(archive, "messages", "messageId")) == sorted(f"msg-{i}" for i in range(1, 8))


async def test_a_write_gets_in_between_the_chunks_of_a_flush(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumers share the loop and, on SQLite, the engine's one connection with the
    archive: a flush gives both back after every chunk, so a consumer's transaction started
    during the reading commits before the reading ends, not after the whole flush."""
    for i in range(1, 31):
        await _order(engine, i, 1, _utc(2026, 3, 1, 0, i), ("pen", 1, 100))
    committed: list[int] = []
    seen_when_writing: list[list[int]] = []
    write_orders = analytics_service._archive_orders

    def archive_orders(*args: Any) -> set[str]:
        seen_when_writing.append(list(committed))
        return write_orders(*args)

    monkeypatch.setattr(analytics_service, "_archive_orders", archive_orders)

    async def consumer() -> None:
        await _order(engine, 99, 2, _utc(2026, 3, 2), ("ink", 1, 500))
        committed.append(99)

    flush = asyncio.create_task(
        analytics_service.flush_archive(Database(engine), Archive(tmp_path / "a"), chunk=3)
    )
    await asyncio.sleep(0)  # the flush has read its first chunk
    await consumer()
    assert not flush.done()
    await flush
    assert seen_when_writing[0] == [99]  # committed while the flush was still reading


async def test_rows_committed_during_a_flush_wait_for_the_next_one(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush does not chase what arrives while it writes: under steady traffic that made a
    segment of a few rows each round."""
    for i in range(1, 4):
        await _order(engine, i, 1, _utc(2026, 3, i), ("pen", 1, 100))
    loop = asyncio.get_running_loop()
    late: list[Order] = []
    write_orders = analytics_service._archive_orders

    def archive_orders(*args: Any) -> set[str]:  # runs in the flush's thread
        if not late:
            arriving = _order(engine, 4, 1, _utc(2026, 3, 4), ("pen", 1, 100))
            late.append(asyncio.run_coroutine_threadsafe(arriving, loop).result())
        return write_orders(*args)

    monkeypatch.setattr(analytics_service, "_archive_orders", archive_orders)
    archive = Archive(tmp_path / "archive")
    assert await analytics_service.flush_archive(Database(engine), archive) == 3
    assert _ids(archive, "orders", "orderId") == [1, 2, 3]
    assert await analytics_service.flush_archive(Database(engine), archive) == 1
    assert _ids(archive, "orders", "orderId") == [1, 2, 3, 4]


async def test_flushes_of_a_month_append_to_one_segment(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Under steady traffic a flush runs every few seconds: each adds a gzip member to the
    month's open segment instead of a file of its own."""
    root = tmp_path / "archive"
    archive = Archive(root)
    for i in range(1, 4):
        await _order(engine, i, 1, _utc(2026, 4, i), ("pen", 1, 100))
        await _message(engine, f"msg-{i}", _utc(2026, 4, i))
        assert await analytics_service.flush_archive(Database(engine), archive) == 2
    for kind in ("orders", "messages"):
        [segment] = (root / "2026-04" / kind).iterdir()
        assert _members(segment.read_bytes()) == 3
    assert [r["orderId"] for r in archive.records("2026-04", "orders")] == [1, 2, 3]
    saved = orjson.loads((root / "state.json").read_bytes())
    assert saved["open"]["orders"] == {
        "path": "2026-04/orders/000000000001.jsonl.gz",
        "size": (root / "2026-04" / "orders" / "000000000001.jsonl.gz").stat().st_size,
    }
    # a new process goes on appending to the same segment
    await _order(engine, 4, 1, _utc(2026, 4, 4), ("pen", 1, 100))
    again = Archive(root)
    assert await analytics_service.flush_archive(Database(engine), again) == 1
    assert [p.name for p in (root / "2026-04" / "orders").iterdir()] == ["000000000001.jsonl.gz"]
    assert [r["orderId"] for r in again.records("2026-04", "orders")] == [1, 2, 3, 4]


async def test_a_full_segment_is_closed_and_the_next_flush_starts_another(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    archive = Archive(root, segment_bytes=1)  # every segment is full after one flush
    for i in range(1, 4):
        await _order(engine, i, 1, _utc(2026, 4, i), ("pen", 1, 100))
        await analytics_service.flush_archive(Database(engine), archive)
    names = sorted(p.name for p in (root / "2026-04" / "orders").iterdir())
    assert names == [f"{seq:012d}.jsonl.gz" for seq in (1, 2, 3)]
    assert [r["orderId"] for r in archive.records("2026-04", "orders")] == [1, 2, 3]


async def test_a_crash_after_appending_before_commit_is_cut_back(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    await _order(engine, 1, 10, _utc(2026, 5, 1), ("pen", 1, 150))
    await analytics_service.flush_archive(Database(engine), Archive(root))
    segment = root / "2026-05" / "orders" / "000000000001.jsonl.gz"
    committed = segment.read_bytes()

    crashed = Archive(root)  # appends order 2 to the open segment, never commits
    await _order(engine, 2, 10, _utc(2026, 5, 2), ("pen", 1, 150))
    async with engine.connect() as conn:
        heads = await analytics_store.orders_after(conn, crashed.state()["orders"], 100)
    crashed.write("orders", [(h.seq, h.ordered_at, {"orderId": h.order_id}) for h in heads])
    assert len(segment.read_bytes()) > len(committed)
    assert [r["orderId"] for r in crashed.records("2026-05", "orders")] == [1]  # not committed
    assert crashed.files("2026-05")[0].size == len(committed)

    restarted = Archive(root)
    restarted.state()
    assert segment.read_bytes() == committed  # cut back to what the state records
    assert await analytics_service.flush_archive(Database(engine), restarted) == 1
    assert [r["orderId"] for r in restarted.records("2026-05", "orders")] == [1, 2]
    assert all("customerId" in r for r in restarted.records("2026-05", "orders"))
    assert _members(segment.read_bytes()) == 2


async def test_segments_named_by_first_and_last_sequence_are_still_read(tmp_path: Path) -> None:
    """Archives written before segments were appended to hold one file per flush."""
    root = tmp_path / "archive"
    folder = root / "2026-06" / "orders"
    folder.mkdir(parents=True)
    for first, last in ((1, 2), (3, 3)):
        lines = b"".join(b'{"orderId":%d}\n' % i for i in range(first, last + 1))
        (folder / f"{first:012d}-{last:012d}.jsonl.gz").write_bytes(gzip.compress(lines))
    (root / "state.json").write_bytes(orjson.dumps({"orders": 3, "messages": 0}))
    archive = Archive(root)
    assert [r["orderId"] for r in archive.records("2026-06", "orders")] == [1, 2, 3]
    archive.write("orders", [(4, _utc(2026, 6, 9), {"orderId": 4})])  # starts a new segment
    archive.commit({"orders": 4})
    assert sorted(p.name for p in folder.iterdir())[-1] == "000000000004.jsonl.gz"
    assert [r["orderId"] for r in Archive(root).records("2026-06", "orders")] == [1, 2, 3, 4]


def test_one_writer_per_archive_folder(tmp_path: Path) -> None:
    first = Archive(tmp_path / "archive")
    first.claim()
    with pytest.raises(OperatorError, match="give each analytics worker a data folder"):
        Archive(tmp_path / "archive").claim()
    Archive(tmp_path / "other").claim()  # another folder: another writer
