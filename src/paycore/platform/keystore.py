"""The secrets of an installation: the card keys (``PAYCORE_CARD_KEYS``), the pepper of the keyed
hashes (``PAYCORE_SECRET_PEPPER``) and the credential between internal services
(``PAYCORE_SERVICE_TOKEN``). paycore has no built-in value for any of them.

A process names the secrets its contexts need (``Processes.secrets``); each one comes from the
settings, or, when the settings leave it empty:

- on a SQLite database (the embedded platform, ``paycore up``), from ``<data dir>/secrets.json``,
  generated with random values the first time any process needs it (mode 0600, created whole
  or not at all, so processes starting together agree on one file). Every process of such an
  installation shares the disk the database lives on, so they all read the same secrets;
- on PostgreSQL, nowhere: the process refuses to start, naming the settings to set. Its
  processes may run on different hosts, where secrets generated locally would differ.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import orjson

from paycore.platform.persistence.db import is_sqlite
from paycore.platform.settings import Settings

FILE_NAME: Final = "secrets.json"
VARIABLES: Final = {
    "card_keys": "PAYCORE_CARD_KEYS",
    "secret_pepper": "PAYCORE_SECRET_PEPPER",
    "service_token": "PAYCORE_SERVICE_TOKEN",
}


class MissingSecrets(ValueError):
    """Secrets a process needs are not configured, and may not be generated here."""


def is_embedded(settings: Settings) -> bool:
    """Whether the installation keeps its data on one host: its database is SQLite."""
    return is_sqlite(settings.effective_database_url)


def resolve(settings: Settings, needed: Iterable[str]) -> tuple[Settings, Path | None]:
    """``settings`` with every empty secret filled when one of ``needed`` is empty, and the
    file they were generated into just now (None if nothing was generated). Refuses
    (``MissingSecrets``) outside the embedded platform."""
    empty = [name for name in VARIABLES if not getattr(settings, name)]
    missing = [name for name in needed if name in empty]
    if not missing:
        return settings, None
    if not is_embedded(settings):
        names = ", ".join(VARIABLES[name] for name in missing)
        raise MissingSecrets(
            f"{names} must be set: on PostgreSQL paycore does not generate secrets (each host "
            "would make its own); generate them once (see the README's settings) and give "
            "every process the same values"
        )
    stored, created = load_or_create(settings.data_dir)
    filled = settings.model_copy(update={name: stored[name] for name in empty})
    return filled, settings.data_dir / FILE_NAME if created else None


def load_or_create(data_dir: Path) -> tuple[dict[str, str], bool]:
    """The secrets stored in ``data_dir``, generated first if there are none; and whether
    this call generated them. The file is written whole under a temporary name and linked
    into place, which fails if another process got there first: then its file is read."""
    path = data_dir / FILE_NAME
    if not path.exists():
        # here, not at the top: the card module brings ``cryptography`` (~7 MB per process),
        # which a process whose contexts keep no cards (payments) never needs otherwise
        from paycore.platform.cards import new_keys, new_pepper

        data_dir.mkdir(parents=True, exist_ok=True)
        fresh = {
            "card_keys": new_keys(),
            "secret_pepper": new_pepper(),
            "service_token": secrets.token_urlsafe(32),
        }
        temporary = data_dir / f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(orjson.dumps(fresh, option=orjson.OPT_INDENT_2))
                out.flush()
                os.fsync(out.fileno())
            os.link(temporary, path)
            _sync_directory(data_dir)
            return fresh, True
        except FileExistsError:
            pass  # another process created it meanwhile: use theirs
        finally:
            temporary.unlink(missing_ok=True)
    return _read(path), False


def _read(path: Path) -> dict[str, str]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MissingSecrets(
            f"{path} is readable by other users (mode {mode:04o}): run chmod 600 on it"
        )
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise MissingSecrets(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(name), str) and data[name] for name in VARIABLES
    ):
        raise MissingSecrets(f"{path} must hold {', '.join(VARIABLES)} as non-empty strings")
    return {name: data[name] for name in VARIABLES}


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
