"""Old inbox entries and idempotency keys are pruned, and the dead letters of topics with a
retention; recent ones stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.platform.clock import utcnow
from paycore.platform.messaging.consumer import inbox
from paycore.platform.messaging.deadletters import dead_letters
from paycore.platform.persistence.uow import Database
from paycore.platform.retention import prune
from paycore.platform.web.claims import idempotency_keys


async def test_prune_removes_only_what_is_older_than_its_retention(engine: AsyncEngine) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            insert(inbox),
            [
                {"consumer": "c", "message_id": "old", "processed_at": now - timedelta(days=8)},
                {"consumer": "c", "message_id": "new", "processed_at": now - timedelta(days=6)},
            ],
        )
        await conn.execute(
            insert(idempotency_keys),
            [
                {
                    "scope": "s",
                    "key": "old",
                    "request_hash": "h",
                    "created_at": now - timedelta(hours=25),
                },
                {
                    "scope": "s",
                    "key": "new",
                    "request_hash": "h",
                    "created_at": now - timedelta(hours=1),
                },
            ],
        )
    removed = await prune(
        Database(engine), inbox_for=timedelta(days=7), keys_for=timedelta(hours=24)
    )
    assert removed == (1, 1, 0)
    async with engine.connect() as conn:
        assert list((await conn.execute(select(inbox.c.message_id))).scalars()) == ["new"]
        assert list((await conn.execute(select(idempotency_keys.c.key))).scalars()) == ["new"]


async def test_dead_letters_of_a_topic_with_a_retention_go_once_older_than_it(
    engine: AsyncEngine,
) -> None:
    now = utcnow()

    def letter(letter_id: str, topic: str, age: timedelta) -> dict[str, object]:
        return {
            "id": letter_id,
            "topic": topic,
            "consumer": "c",
            "message_id": letter_id,
            "headers": "{}",
            "body": b"sealed",
            "error": "e",
            "attempts": 1,
            "created_at": now - age,
        }

    async with engine.begin() as conn:
        await conn.execute(
            insert(dead_letters),
            [
                letter("card-old", "cards", timedelta(hours=25)),
                letter("card-new", "cards", timedelta(hours=23)),
                letter("other-old", "orders", timedelta(days=400)),  # no retention: kept
            ],
        )
    removed = await prune(
        Database(engine),
        inbox_for=timedelta(days=7),
        keys_for=timedelta(hours=24),
        topics={"cards": 24 * 3600},
    )
    assert removed == (0, 0, 1)
    async with engine.connect() as conn:
        kept = set((await conn.execute(select(dead_letters.c.id))).scalars())
    assert kept == {"card-new", "other-old"}
