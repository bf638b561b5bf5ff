"""Who is calling: merchants by their secret (a keyed hash looked up, cached briefly),
dashboard users by a signed session cookie (the operator's admin token is the platform's:
``paycore.platform.web.admin``); and the ``Guard`` in
front of every merchant route (credentials, the failed-secret window, the rate limit)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from paycore.gateway import store
from paycore.gateway.domain import RateLimited, Unauthorized
from paycore.platform.cards import Hasher
from paycore.platform.persistence.db import AnyRow
from paycore.platform.single_flight import SingleFlight
from paycore.platform.web.credentials import Credential
from paycore.platform.web.ratelimit import FailureLimit, RateLimiter, retry_after

MERCHANT_SECRET = Credential(
    "merchantSecret",
    {"type": "http", "scheme": "bearer", "description": "The account's secret (pcsk_…)"},
)
MERCHANT_TOKEN = Credential(
    "merchantToken",
    {
        "type": "apiKey",
        "in": "header",
        "name": "x-token",
        "description": "The secret, as the seed sends it",
    },
)
SESSION = Credential(
    "dashboardSession",
    {
        "type": "apiKey",
        "in": "cookie",
        "name": "paycore_session",
        "description": "A dashboard session (POST /dashboard/login)",
    },
)
BY_SECRET = (MERCHANT_SECRET, MERCHANT_TOKEN)
"""What a merchant's write takes: the secret (a session cookie is never enough to write)."""
AS_MERCHANT = (*BY_SECRET, SESSION)
"""What a merchant's read takes: the secret or a dashboard session."""

MAX_SECRET_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Merchant:
    """An authenticated, active account."""

    id: str
    name: str


class Authenticator:
    """Resolves secrets and account ids to active accounts. Answers are cached for
    ``ttl_seconds`` (so a disabled account or a bad secret is refused everywhere within that
    time), at most ``size`` entries; concurrent misses of one key share one query."""

    def __init__(
        self,
        connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
        hasher: Hasher,
        *,
        ttl_seconds: float = 5.0,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self._hasher = hasher
        self._ttl = ttl_seconds
        self._size = size
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, Merchant | None]] = OrderedDict()
        self._loads: SingleFlight[str, Merchant | None] = SingleFlight()

    async def by_secret(self, secret: str) -> Merchant | None:
        """The active account holding this secret, or None."""
        if not secret or len(secret) > MAX_SECRET_LENGTH:
            return None
        digest = self._hasher.secret(secret)
        return await self._cached("s:" + digest, lambda c: store.account_by_secret(c, digest))

    async def by_id(self, account_id: str) -> Merchant | None:
        """The account if it is active, or None (a disabled account's sessions end)."""
        return await self._cached("i:" + account_id, lambda c: store.find_account(c, account_id))

    async def _cached(
        self, key: str, load: Callable[[AsyncConnection], Awaitable[AnyRow | None]]
    ) -> Merchant | None:
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]

        async def query() -> Merchant | None:
            # the requests that find the entry expired together share this one query
            async with self._connect() as conn:
                row = await load(conn)
            found = Merchant(row.id, row.name) if row and row.status == store.ACTIVE else None
            self._cache[key] = (self._clock() + self._ttl, found)
            self._cache.move_to_end(key)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
            return found

        return await self._loads.load(key, query)


def bearer(authorization: str | None, x_token: str | None) -> str | None:
    """The credential of a request: ``Authorization: Bearer …`` or the seed's ``x-token``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None
    return x_token.strip() if x_token and x_token.strip() else None


@dataclass(frozen=True, slots=True)
class Session:
    account_id: str
    expires: int
    csrf: str


class Sessions:
    """Dashboard sessions as signed cookies: ``account.expires.nonce.mac`` (HMAC-SHA256).
    Nothing is stored server side: logging out clears the cookie, disabling the account ends
    every session, and a session lasts at most ``lifetime_seconds``. The CSRF token is derived
    from the session's nonce, so it is only known to a page the session's login answered."""

    def __init__(self, key: bytes, lifetime_seconds: int) -> None:
        self._key = key
        self.lifetime = lifetime_seconds

    def issue(self, account_id: str, now: float) -> tuple[str, Session]:
        expires = int(now) + self.lifetime
        nonce = secrets.token_urlsafe(16)
        payload = f"{account_id}.{expires}.{nonce}"
        return f"{payload}.{self._mac(payload)}", Session(account_id, expires, self._csrf(nonce))

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie carries, if it is authentic and not expired."""
        if not cookie or cookie.count(".") != 3 or len(cookie) > 300:
            return None
        payload, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        account_id, expires_text, nonce = payload.split(".")
        if not expires_text.isdigit() or int(expires_text) <= now:
            return None
        return Session(account_id, int(expires_text), self._csrf(nonce))

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, b"session:" + payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def _csrf(self, nonce: str) -> str:
        return hmac.new(self._key, b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()[:32]


class Guard:
    """Authenticates merchants (secret, or the dashboard's session cookie on reads) and
    applies the per-account rate limit. Every secret offered (API calls, dashboard logins)
    goes through :meth:`by_secret`: a client address that offered too many bad or disabled
    secrets is refused (429) until its failure window ends, even with a good secret."""

    def __init__(
        self,
        auth: Authenticator,
        limiter: RateLimiter,
        sessions: Sessions,
        failures: FailureLimit,
    ) -> None:
        self.auth = auth
        self.limiter = limiter
        self.sessions = sessions
        self.failures = failures

    async def merchant(
        self, headers: Mapping[str, str], client: str, cookie: str | None = None
    ) -> Merchant:
        """The calling account, rate-limited; ``Unauthorized`` or ``RateLimited`` otherwise."""
        credential = bearer(headers.get("authorization"), headers.get("x-token"))
        if credential is not None:
            merchant = await self.by_secret(credential, client)
        elif (session := self.sessions.read(cookie, time.time())) is not None:
            found = await self.auth.by_id(session.account_id)
            if found is None:
                raise Unauthorized("The account is disabled.")
            merchant = found
        else:
            raise Unauthorized()
        wait = self.limiter.take(merchant.id)
        if wait:
            raise RateLimited(
                f"Too many requests for this account; retry in {retry_after(wait)} s.",
                retry_after(wait),
            )
        return merchant

    async def by_secret(self, secret: str, client: str) -> Merchant:
        """The active account holding ``secret``; ``Unauthorized`` (counted against the
        client's address) if there is none, ``RateLimited`` while the address is shut out."""
        wait = self.failures.wait(client)
        if wait:
            raise RateLimited(
                "Too many invalid account secrets from this address; "
                f"retry in {retry_after(wait)} s.",
                retry_after(wait),
            )
        merchant = await self.auth.by_secret(secret)
        if merchant is None:
            self.failures.fail(client)
            raise Unauthorized("The account secret is invalid or the account is disabled.")
        return merchant
