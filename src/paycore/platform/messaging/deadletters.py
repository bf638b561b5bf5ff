"""Dead letters: messages that could not be handled, kept with the reason and the raw bytes,
published to ``<topic>.dlq`` (through the outbox) and replayable by an operator."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from paycore.platform.clock import utcnow
from paycore.platform.failures import OperatorError
from paycore.platform.ids import uuid7
from paycore.platform.messaging.bus import Delivery, dead_letter_topic
from paycore.platform.persistence.db import AnyRow, UtcDateTime, metadata
from paycore.platform.persistence.uow import Database, Transaction

REPLAY_OF = "paycore-replay-of"

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("topic", String(200), nullable=False, index=True),
    Column("consumer", String(200), nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("key", String(200)),
    Column("headers", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("replayed_at", UtcDateTime()),
)


async def recorded(tx: Transaction, delivery: Delivery, *, consumer: str) -> bool:
    """Whether ``consumer`` dead-lettered this message (its id, on its topic) already."""
    query = select(dead_letters.c.id).where(
        dead_letters.c.topic == delivery.topic,
        dead_letters.c.consumer == consumer,
        dead_letters.c.message_id == delivery.id,
    )
    return (await tx.conn.execute(query.limit(1))).first() is not None


async def record(
    tx: Transaction, delivery: Delivery, *, consumer: str, error: str, attempts: int
) -> str:
    """Store a dead letter and queue it on the dead-letter topic, in the caller's unit of work."""
    letter_id = uuid7()
    headers = dict(delivery.headers)
    await tx.execute(
        insert(dead_letters).values(
            id=letter_id,
            topic=delivery.topic,
            consumer=consumer,
            message_id=delivery.id,
            key=delivery.key,
            headers=orjson.dumps(headers).decode(),
            body=delivery.body,
            error=error[:2000],
            attempts=attempts,
            created_at=utcnow(),
        )
    )
    tx.publish(
        dead_letter_topic(delivery.topic),
        delivery.body,
        key=delivery.key,
        headers={**headers, "paycore-error": error[:500], "paycore-consumer": consumer},
        message_id=f"dlq-{letter_id}",
    )
    return letter_id


async def list_letters(
    db: Database,
    *,
    topic: str | None = None,
    include_replayed: bool = False,
    limit: int = 100,
) -> Sequence[AnyRow]:
    """Newest first."""
    query = select(dead_letters).order_by(dead_letters.c.created_at.desc()).limit(limit)
    if topic:
        query = query.where(dead_letters.c.topic == topic)
    if not include_replayed:
        query = query.where(dead_letters.c.replayed_at.is_(None))
    async with db.connect() as conn:
        return (await conn.execute(query)).all()


class NotReplayable(OperatorError):
    """Some dead letters asked for do not exist or were replayed already: none is replayed."""

    def __init__(self, unknown: Sequence[str], replayed: Sequence[str]) -> None:
        self.unknown, self.replayed = list(unknown), list(replayed)
        problems = []
        if unknown:
            problems.append(f"unknown dead letter id(s): {', '.join(unknown)}")
        if replayed:
            problems.append(f"already replayed: {', '.join(replayed)}")
        super().__init__(f"{'; '.join(problems)}; none was replayed (it is all or nothing)")


async def replay(db: Database, letter_ids: Sequence[str]) -> int:
    """Put dead letters back on their topic (through the outbox) under a new message id, and
    say how many: all of them, or none if any is unknown or was replayed already
    (``NotReplayable``)."""
    wanted = list(dict.fromkeys(letter_ids))
    async with db.transaction() as tx:
        rows = (await tx.execute(select(dead_letters).where(dead_letters.c.id.in_(wanted)))).all()
        found = {row.id: row for row in rows}
        unknown = [i for i in wanted if i not in found]
        replayed = [i for i in wanted if i in found and found[i].replayed_at is not None]
        if unknown or replayed:
            raise NotReplayable(unknown, replayed)
        for row in rows:
            headers = {**orjson.loads(row.headers), REPLAY_OF: row.message_id}
            tx.publish(
                row.topic,
                row.body,
                key=row.key,
                headers=headers,
                message_id=f"replay-{row.id}",
            )
            await tx.execute(
                update(dead_letters).where(dead_letters.c.id == row.id).values(replayed_at=utcnow())
            )
    return len(rows)
