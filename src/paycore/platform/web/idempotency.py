"""``Idempotency-Key`` for POST requests: the same key with the same request replays the first
answer; the same key with a different request is a 422; a request still running is a 409."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import timedelta

import orjson
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.platform.clock import utcnow
from paycore.platform.persistence.db import UtcDateTime, metadata
from paycore.platform.persistence.uow import Database
from paycore.platform.web.fastlane import read_body, replaying
from paycore.platform.web.problems import Problem, problem_response

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotent-replayed"
IN_PROGRESS_STALE = timedelta(seconds=60)
_KEPT_HEADERS = {b"content-type", b"location", b"retry-after"}

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(64), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),
    Column("headers", Text),
    Column("body", LargeBinary),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("scope", "key"),
)


class IdempotencyMiddleware:
    """Pure ASGI middleware; the key is scoped to the caller's credential. With a ``secret``
    the stored request fingerprint is an HMAC, so a body holding card data cannot be guessed
    back from it."""

    def __init__(self, app: ASGIApp, db: Callable[[], Database], secret: bytes = b"") -> None:
        self.app = app
        self._db = db
        self._secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key_bytes = headers.get(HEADER)
        if key_bytes is None:
            await self.app(scope, receive, send)
            return
        key = key_bytes.decode("latin-1").strip()
        if not 1 <= len(key) <= 255:
            problem = Problem(
                400, "bad-idempotency-key", "Idempotency-Key must be 1 to 255 characters."
            )
            await problem_response(problem, scope["path"])(scope, receive, send)
            return
        body = await read_body(receive)
        credential = headers.get(b"authorization") or headers.get(b"x-token") or b""
        owner = hashlib.sha256(credential).hexdigest()
        fingerprint = request_fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b""), body, self._secret
        )
        db = self._db()

        answer = await self._claim(db, owner, key, fingerprint)
        if answer is not None:
            await answer(scope, receive, send)
            return

        status, out_headers, chunks = 500, [], []

        async def capture(message: Message) -> None:
            nonlocal status, out_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replaying(body, receive), capture)
        finally:
            await self._settle(db, owner, key, status, out_headers, b"".join(chunks))

    async def _claim(self, db: Database, owner: str, key: str, fingerprint: str) -> ASGIApp | None:
        """Reserve the key; return the response to send instead when it is not ours to run."""
        now = utcnow()
        try:
            async with db.transaction() as tx:
                await tx.execute(
                    insert(idempotency_keys).values(
                        scope=owner, key=key, request_hash=fingerprint, created_at=now
                    )
                )
            return None
        except IntegrityError:
            pass
        async with db.transaction() as tx:
            row = (
                await tx.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.scope == owner, idempotency_keys.c.key == key
                    )
                )
            ).one()
            if row.request_hash != fingerprint:
                return problem_response(
                    Problem(
                        422,
                        "idempotency-key-reused",
                        "This Idempotency-Key was already used with a different request.",
                    )
                )
            if row.status is None:
                created = (
                    row.created_at
                    if row.created_at.tzinfo
                    else row.created_at.replace(tzinfo=now.tzinfo)
                )
                if now - created < IN_PROGRESS_STALE:
                    return problem_response(
                        Problem(
                            409,
                            "idempotency-key-in-progress",
                            "A request with this Idempotency-Key is still being processed.",
                            headers={"Retry-After": "1"},
                        )
                    )
                await tx.execute(
                    update(idempotency_keys)
                    .where(idempotency_keys.c.scope == owner, idempotency_keys.c.key == key)
                    .values(created_at=now)
                )
                return None
            return _stored_response(row.status, row.headers, row.body)

    async def _settle(
        self,
        db: Database,
        owner: str,
        key: str,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        where = (idempotency_keys.c.scope == owner) & (idempotency_keys.c.key == key)
        async with db.transaction() as tx:
            if status >= 500:  # not an answer worth replaying: let the client retry
                await tx.execute(delete(idempotency_keys).where(where))
                return
            kept = [
                [k.decode(), v.decode("latin-1")] for k, v in headers if k.lower() in _KEPT_HEADERS
            ]
            await tx.execute(
                update(idempotency_keys)
                .where(where)
                .values(status=status, headers=orjson.dumps(kept).decode(), body=body)
            )


def request_fingerprint(
    method: str, path: str, query: bytes, body: bytes, secret: bytes = b""
) -> str:
    """What makes two requests "the same" for a key: method, path, query string and body
    (keyed with ``secret`` when one is given)."""
    request = b"%s %s?%s\n%s" % (method.encode(), path.encode(), query, body)
    if secret:
        return hmac.new(secret, request, hashlib.sha256).hexdigest()
    return hashlib.sha256(request).hexdigest()


def _stored_response(status: int, headers_json: str | None, body: bytes | None) -> ASGIApp:
    headers = [(k.encode(), v.encode("latin-1")) for k, v in orjson.loads(headers_json or "[]")]
    headers.append((REPLAYED_HEADER, b"true"))

    async def respond(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body or b""})

    return respond
