"""The transactional outbox's table and its events: an event is written in the same transaction
as the state it describes (``paycore.platform.persistence.uow``), then the relay
(``paycore.platform.messaging.relay``) publishes it with broker confirms and removes it.

Within a process an event travels as an ``Envelope`` whose headers are data; only its row
holds them as JSON text, for a relay that reads the table (another process, after a crash)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Column, LargeBinary, String, Table, Text

from paycore.platform.ids import uuid7
from paycore.platform.messaging.bus import CORRELATION_ID, CREATED_AT, Envelope
from paycore.platform.observability.tracing import TRACEPARENT
from paycore.platform.persistence.db import BIG_ID, UtcDateTime, metadata

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BIG_ID, primary_key=True, autoincrement=True),
    Column("id", String(200), nullable=False, unique=True),  # message ids: uuid, dlq-…, replay-…
    Column("topic", String(200), nullable=False),
    Column("key", String(200)),
    Column("headers", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("claimed_until", UtcDateTime()),
    sqlite_autoincrement=True,
)

ROW_COLUMNS = ("id", "topic", "key", "headers", "body", "created_at")
"""The columns ``row`` fills."""


def event(
    topic: str,
    body: bytes,
    *,
    at: datetime,
    key: str | None = None,
    headers: Mapping[str, str] | None = None,
    correlation_id: str = "",
    traceparent: str = "",
    message_id: str | None = None,
) -> Envelope:
    """An event written at ``at``: its headers carry the correlation id and the
    ``traceparent`` (of the request or message it came from; unless ``headers`` has its own)
    and when it was written (for the consumers' lag)."""
    all_headers = dict(headers or {})
    if correlation_id and CORRELATION_ID not in all_headers:
        all_headers[CORRELATION_ID] = correlation_id
    if traceparent and TRACEPARENT not in all_headers:
        all_headers[TRACEPARENT] = traceparent
    all_headers[CREATED_AT] = str(int(at.timestamp() * 1000))
    return Envelope(topic, body, id=message_id or uuid7(), key=key, headers=all_headers)


def row(envelope: Envelope, at: datetime) -> dict[str, Any]:
    """The outbox row (``ROW_COLUMNS``) of an event written at ``at``."""
    return dict(zip(ROW_COLUMNS, row_values(envelope, stored_headers(envelope), at), strict=True))


def row_values(envelope: Envelope, headers: str, at: datetime) -> tuple[Any, ...]:
    """``row`` as values in ``ROW_COLUMNS`` order, given its ``stored_headers``."""
    return (envelope.id, envelope.topic, envelope.key, headers, envelope.body, at)


def stored_headers(envelope: Envelope) -> str:
    """The JSON of an event's headers its row keeps: all but when it was written (the row's
    ``created_at`` says it)."""
    return orjson.dumps({k: v for k, v in envelope.headers.items() if k != CREATED_AT}).decode()


def envelope(stored: Mapping[Any, Any]) -> Envelope:
    """The event of an outbox row read back from the table."""
    return Envelope(
        topic=stored["topic"],
        body=stored["body"],
        id=stored["id"],
        key=stored["key"],
        headers={
            **orjson.loads(stored["headers"]),
            CREATED_AT: str(int(stored["created_at"].timestamp() * 1000)),
        },
    )
