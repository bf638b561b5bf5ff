"""The Alembic migrations build exactly the tables the code declares, on both engines, and can
be rolled back; each context has its own branch; databases of the former single chain are
stamped and upgraded without losing a row; a context's next revision is generated into its
own branch."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, Table, func, insert, text

from paycore import contexts, schema
from paycore.platform.persistence.db import create_engine, metadata
from paycore.platform.persistence.outbox import outbox

BRANCHES = {"platform", *contexts.NAMES}


def _url(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("postgres_url"))


async def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_migrations_match_the_models_and_roll_back(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = _url(engine, request, tmp_path)
    config = schema.alembic_config(url)
    command.upgrade(config, "heads")
    command.check(config)  # raises if the models and the migrated schema differ
    heads = {row[0] for row in asyncio.run(_query(url, "SELECT version_num FROM alembic_version"))}
    assert {str(h).split("_")[0] for h in heads} == BRANCHES  # one branch per owner
    command.downgrade(config, "base")
    command.upgrade(config, "heads")


def _legacy_database(url: str, revision: str, created: list[str]) -> None:
    """A database as the former single chain left it at ``revision``: the tables as the branch
    revisions in ``created`` (their first ones) make them, that revision alone in
    ``alembic_version``, one outbox row."""
    config = schema.alembic_config(url)
    for branch_revision in created:
        command.upgrade(config, branch_revision)
    asyncio.run(_as_legacy(url, revision))


async def _as_legacy(url: str, revision: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM alembic_version"))
        await conn.execute(text(f"INSERT INTO alembic_version VALUES ('{revision}')"))  # noqa: S608
        await conn.execute(
            insert(outbox).values(
                id="m-1", topic="t", headers="{}", body=b"x", created_at=func.now()
            )
        )
    await engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_database_of_the_former_chain_is_stamped_and_upgraded_keeping_its_rows(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = _url(engine, request, tmp_path)
    # at 0001 the chain had created the platform's and commerce's tables only, as their
    # branches' first revisions make them (later revisions change them)
    _legacy_database(url, "0001", ["platform_0001", "commerce_0001"])
    schema.upgrade(url)
    heads = {row[0] for row in asyncio.run(_query(url, "SELECT version_num FROM alembic_version"))}
    assert {str(h).split("_")[0] for h in heads} == BRANCHES
    command.check(schema.alembic_config(url))  # the later contexts' tables were created
    assert asyncio.run(_query(url, "SELECT id FROM outbox")) == [("m-1",)]


def test_a_new_revision_is_generated_into_its_context_branch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = contexts.folder
    shutil.copytree(real("payments") / "migrations", tmp_path / "payments" / "migrations")
    monkeypatch.setattr(
        contexts, "folder", lambda name: tmp_path / name if name == "payments" else real(name)
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"
    notes = Table("payments_notes", metadata, Column("id", Integer, primary_key=True))
    try:
        written = Path(schema.new_revision(url, "payments", "notes"))
        assert written.parent == tmp_path / "payments" / "migrations"
        source = written.read_text()
        assert (
            "create_table('payments_notes'" in source or 'create_table("payments_notes"' in source
        )
        latest = max(p.name[:4] for p in (real("payments") / "migrations").glob("0*.py"))
        assert f"Revises: payments_{latest}" in source  # the branch's next revision
        schema.upgrade(url)
        assert asyncio.run(_query(url, "SELECT count(*) FROM payments_notes")) == [(0,)]
    finally:
        metadata.remove(notes)
    with pytest.raises(ValueError, match="unknown context"):
        schema.new_revision(url, "nowhere", "x")


def test_every_owner_has_exactly_one_base() -> None:
    scripts = ScriptDirectory.from_config(schema.alembic_config("sqlite://"))
    bases = [scripts.get_revision(b) for b in scripts.get_bases()]
    assert sorted(str(b.revision).split("_")[0] for b in bases if b) == sorted(BRANCHES)
