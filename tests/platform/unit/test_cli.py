"""The platform's commands in this process (Typer's runner), on SQLite files: a database never
migrated or behind is said in one line; dead letters are listed with their whole ids and
replayed all or nothing."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from typer.testing import Result
from unit_fixtures import Cli

from paycore import contexts
from paycore.platform.messaging import deadletters
from paycore.platform.messaging.bus import Delivery
from paycore.platform.persistence import migrate
from paycore.platform.persistence.db import create_engine
from paycore.platform.persistence.uow import Database
from paycore.schema import upgrade

TOPIC = "btg-pactual-order-created"


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def record_letters(url: str, count: int) -> list[str]:
    """``count`` dead letters of one consumer, with errors longer than a screen line."""

    async def record() -> list[str]:
        db = Database(create_engine(url))
        try:
            async with db.transaction() as tx:
                return [
                    await deadletters.record(
                        tx,
                        Delivery(TOPIC, b"not json at all", f"m-{n}", None, {}),
                        consumer="commerce-analytics",
                        error="not JSON: unexpected character at line 1 column 1 " + "x" * 200,
                        attempts=5,
                    )
                    for n in range(count)
                ]
        finally:
            await db.engine.dispose()

    return asyncio.run(record())


def replayed(url: str) -> set[str]:
    async def query() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                sql = text("SELECT id FROM dead_letters WHERE replayed_at IS NOT NULL")
                return set((await conn.execute(sql)).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(query())


def test_a_database_never_migrated_is_said_in_one_line_and_left_uncreated(cli: Cli) -> None:
    result = cli.run("dead-letters", "list")
    assert result.exit_code == 1
    assert one_line(result) == (
        f"the database at {cli.database} has no paycore tables: run `paycore migrate`"
    )
    assert not cli.data_dir.exists()


def test_a_database_behind_the_migrations_is_said_in_one_line(cli: Cli) -> None:
    """As when paycore was upgraded (here: the payments context added) since the last
    migration."""
    url = cli.database
    for revision in ("platform_0001", "commerce_0001", "fulfillment_0001", "gateway_0001"):
        migrate.upgrade(url, contexts.migrations(), revision)
    result = cli.run("dead-letters", "replay", "--topic", TOPIC)
    assert result.exit_code == 1
    assert one_line(result) == (
        f"the database at {url} is at an older revision than this paycore: run `paycore migrate`"
    )
    checked = cli.run("migrate", "--check")  # what a new pod's init container waits on
    assert checked.exit_code == 1
    assert one_line(checked) == one_line(result)
    assert cli.run("migrate").exit_code == 0
    assert cli.run("migrate", "--check").exit_code == 0
    assert cli.run("dead-letters", "list").exit_code == 0


def test_dead_letters_are_listed_with_their_whole_ids_on_a_narrow_screen(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    url = cli.database
    upgrade(url)
    ids = record_letters(url, 3)
    result = cli.run("dead-letters", "list")
    assert result.exit_code == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert sorted(line.split()[0] for line in heads) == sorted(ids)
    errors = [line for line in result.stdout.splitlines() if line.startswith(" ")]
    assert len(errors) == 3
    assert all(len(line) <= 80 and line.endswith("…") for line in errors)
    assert "3 dead letter(s); --json shows each in full, body included" in result.stderr
    newest = cli.run("dead-letters", "list", "--limit", "2")
    assert len([line for line in newest.stdout.splitlines() if not line.startswith(" ")]) == 2
    assert "the newest 2 dead letters (--limit N shows more)" in newest.stderr
    listed = [
        json.loads(line) for line in cli.run("dead-letters", "list", "--json").stdout.splitlines()
    ]
    assert sorted(x["id"] for x in listed) == sorted(ids)
    assert all(x["error"].endswith("x" * 200) for x in listed)  # whole in JSON


def test_replaying_an_unknown_id_fails_and_replays_none(cli: Cli) -> None:
    url = cli.database
    upgrade(url)
    first, second = record_letters(url, 2)

    refused = cli.run("dead-letters", "replay", first, "no-such-letter", "nor-this")
    assert refused.exit_code == 1
    assert one_line(refused) == (
        "unknown dead letter id(s): no-such-letter, nor-this; none was replayed "
        "(it is all or nothing)"
    )
    assert replayed(url) == set()

    done = cli.run("dead-letters", "replay", first, second, first)
    assert done.exit_code == 0, done.stderr
    assert "2 dead letter(s) queued for replay" in done.stderr
    assert replayed(url) == {first, second}

    again = cli.run("dead-letters", "replay", first)
    assert again.exit_code == 1
    assert one_line(again) == f"already replayed: {first}; none was replayed (it is all or nothing)"
