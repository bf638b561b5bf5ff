"""Alembic migrations shipped inside the package: one environment here, one branch of versions
per owner (the platform's own tables in ``alembic/versions``, each context's in its own
``migrations`` folder), all applied together up to their heads.

Databases created before the versions were split by owner carry a revision of the former
single chain (``0001`` to ``0004``) in ``alembic_version``. A branch's first revision names the
revision of that chain that created its tables (``legacy_revision``); such a database is
stamped with every branch revision its chain revision covers, and then upgraded as usual.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from paycore.platform.failures import OperatorError, redacted
from paycore.platform.persistence import probe
from paycore.platform.persistence.db import is_sqlite, sqlite_file

ENVIRONMENT = Path(__file__).resolve().parent / "alembic"


def alembic_config(database_url: str, locations: Sequence[Path]) -> Config:
    """The Alembic configuration for a database and the versions folders of its owners."""
    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    config.set_main_option("path_separator", "os")
    folders = [ENVIRONMENT / "versions", *locations]
    config.set_main_option("version_locations", os.pathsep.join(str(f) for f in folders))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, locations: Sequence[Path], revision: str = "heads") -> None:
    """Bring the database to ``revision`` (every branch's head by default), first stamping a
    database of the former single chain; creates the SQLite file's folder if needed."""
    if is_sqlite(database_url) and (database := sqlite_file(database_url)) != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(database_url, locations)
    if legacy := asyncio.run(_legacy_revision(database_url)):
        command.stamp(config, covered_by(ScriptDirectory.from_config(config), legacy), purge=True)
    command.upgrade(config, revision)


def covered_by(scripts: ScriptDirectory, legacy: str) -> list[str]:
    """The branch revisions whose tables the former chain had created by ``legacy``."""
    return sorted(
        script.revision
        for script in scripts.walk_revisions()
        if (made := getattr(script.module, "legacy_revision", None)) and made <= legacy
    )


def check(database_url: str, locations: Sequence[Path]) -> None:
    """The database is at the head of every branch, else ``NotMigrated`` (or, at a revision
    these migrations do not know, an ``OperatorError``: a newer paycore migrated it)."""
    found = asyncio.run(probe.revisions(database_url))
    scripts = ScriptDirectory.from_config(alembic_config(database_url, locations))
    if found == set(scripts.get_heads()):
        return
    known = {script.revision for script in scripts.walk_revisions()}
    unknown = sorted(v for v in found if v not in known and not _is_legacy(v))
    if unknown:
        raise OperatorError(
            f"the database at {redacted(database_url)} was migrated by a newer paycore "
            f"(revision {', '.join(unknown)} is unknown to this one): upgrade paycore"
        )
    raise probe.NotMigrated(database_url, "is at an older revision than this paycore")


def _is_legacy(revision: str) -> bool:
    """A revision of the former single chain (``0001`` to ``0004``)."""
    return revision.isdigit()


async def _legacy_revision(database_url: str) -> str | None:
    """The former single chain's revision the database is at, if it is one of those."""
    async with probe.connection(database_url) as conn:
        if not await conn.run_sync(lambda c: inspect(c).has_table(probe.VERSIONS)):
            return None
        found = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    versions = [str(row[0]) for row in found]
    return versions[0] if len(versions) == 1 and _is_legacy(versions[0]) else None
