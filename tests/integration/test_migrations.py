"""The Alembic migrations build exactly the tables the code declares, on both engines, and can
be rolled back."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command

from paycore.platform.persistence.migrate import alembic_config


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_migrations_match_the_models_and_roll_back(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        if engine == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    config = alembic_config(url)
    command.upgrade(config, "head")
    command.check(config)  # raises if the models and the migrated schema differ
    command.downgrade(config, "base")
    command.upgrade(config, "head")
