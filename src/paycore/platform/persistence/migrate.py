"""Alembic migrations shipped inside the package, applied by ``paycore migrate`` and ``up``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from paycore.platform.persistence.db import is_sqlite, sqlite_file

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision`` (creates the SQLite file's folder if needed)."""
    if is_sqlite(database_url) and (database := sqlite_file(database_url)) != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)
