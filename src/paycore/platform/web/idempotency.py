"""``Idempotency-Key`` for POST requests: the same key with the same request replays the first
answer; the same key with a different request is a 422; a request still running is a 409 with
``Retry-After``. A request whose process died is taken over by a retry once its short lease
(``PAYCORE_IDEMPOTENCY_LEASE_SECONDS``) has run out, and its effect still happens once
(``claims``, ``persistence.fencing``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.platform.clock import utcnow
from paycore.platform.persistence import fencing
from paycore.platform.persistence.uow import Database
from paycore.platform.web.claims import Claims, Keeper, Replay
from paycore.platform.web.fastlane import read_body, replaying
from paycore.platform.web.problems import Problem, problem_response

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotent-replayed"
DEFAULT_LEASE_SECONDS = 5.0


class IdempotencyMiddleware:
    """Pure ASGI middleware; a key is scoped to the caller and the route (``caller``). With a
    ``secret`` the stored request fingerprint is an HMAC, so a body holding card data cannot
    be guessed back from it. The request runs with its claim bound (``fencing.bind``), so
    whatever it commits carries the key's effect row."""

    def __init__(
        self,
        app: ASGIApp,
        db: Callable[[], Database],
        secret: bytes = b"",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self._db = db
        self._secret = secret
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock
        self._claims: Claims | None = None

    def claims(self) -> Claims:
        """The claims, on the process's database (known once it has started)."""
        if self._claims is None:
            self._claims = Claims(self._db(), lease=self._lease, clock=self._clock)
        return self._claims

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
            await problem_response(problem)(scope, receive, send)
            return
        body = await read_body(receive)
        scope_of_key = caller(headers, scope["method"], scope["path"])
        fingerprint = request_fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b""), body, self._secret
        )
        claims = self.claims()
        taken = await claims.take(scope_of_key, key, fingerprint)
        if isinstance(taken, Problem):
            await problem_response(taken)(scope, receive, send)
            return
        if isinstance(taken, Replay):
            await _replayed(taken, send)
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

        keeper = Keeper(claims, taken)
        try:
            with fencing.bound(taken):
                await self.app(scope, replaying(body, receive), capture)
        finally:
            keeper.stop()
            await claims.settle(taken, status, out_headers, b"".join(chunks))


def caller(headers: Mapping[bytes, bytes], method: str, path: str) -> str:
    """Whose keys these are: the caller's credentials (a secret or token, a session cookie) and
    the route, so that one key on two routes, or from two callers (or two sessions), is two
    keys, and an answer is never replayed to a caller without the credentials it was made
    for."""
    credentials = b"\0".join(headers.get(name, b"") for name in _CREDENTIAL_HEADERS)
    route = b"%s %s" % (method.encode(), path.encode())
    return hashlib.sha256(credentials + b"\0" + route).hexdigest()


_CREDENTIAL_HEADERS = (b"authorization", b"x-token", b"cookie")


def request_fingerprint(
    method: str, path: str, query: bytes, body: bytes, secret: bytes = b""
) -> str:
    """What makes two requests "the same" for a key: method, path, query string and body
    (keyed with ``secret`` when one is given)."""
    request = b"%s %s?%s\n%s" % (method.encode(), path.encode(), query, body)
    if secret:
        return hmac.new(secret, request, hashlib.sha256).hexdigest()
    return hashlib.sha256(request).hexdigest()


async def _replayed(answer: Replay, send: Send) -> None:
    headers = [*answer.headers, (REPLAYED_HEADER, b"true")]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
