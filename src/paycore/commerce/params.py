"""Path parameters both commerce services take: an archived month and one of its files."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from paycore.commerce.domain import ARCHIVE_FILE, ARCHIVE_MONTH

Month = Annotated[str, Path(pattern=ARCHIVE_MONTH, description="e.g. 2026-11")]
ArchiveFile = Annotated[
    str, Path(pattern=ARCHIVE_FILE, description="orders.jsonl.gz, messages.jsonl.gz or report.json")
]
