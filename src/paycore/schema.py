"""The database schema of every context: the platform's migrations plus each registered
context's branch (``paycore.contexts``), applied together by ``paycore migrate``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from paycore import contexts
from paycore.platform.persistence import migrate


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration over every branch, with every table on the metadata."""
    contexts.load_all()
    return migrate.alembic_config(database_url, contexts.migrations())


def upgrade(database_url: str) -> None:
    """Bring the database to the head of every branch."""
    contexts.load_all()
    migrate.upgrade(database_url, contexts.migrations())


def check(database_url: str) -> None:
    """The database answers and is at the head of every branch; else an ``OperatorError``
    saying what to do (``run `paycore migrate```)."""
    migrate.check(database_url, contexts.migrations())


def new_revision(database_url: str, context: str, message: str) -> str:
    """Write the next revision of a context's branch (its first one starts the branch),
    generated from the difference between its tables and the database, which is migrated to
    the heads first; returns the new file's path."""
    [name] = contexts.chosen([context])
    folder = contexts.folder(name) / "migrations"
    first = not folder.is_dir()
    folder.mkdir(exist_ok=True)
    upgrade(database_url)
    script = command.revision(
        alembic_config(database_url),
        message=message,
        autogenerate=True,
        version_path=str(folder),
        head="base" if first else f"{name}@head",
        branch_label=name if first else None,
    )
    assert script is not None
    assert not isinstance(script, list)
    return str(script.path)
