"""Webhook deliveries (signed, sent to the address checked, retried with backoff, given up
after the last attempt, failed at once when the URL is refused at send time), the per-key
rate limiter and failure windows, and dashboard session cookies."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from gateway_kit import CARD_KEYS, WebhookReceiver
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from paycore.gateway import messages, service, store
from paycore.gateway.auth import Sessions
from paycore.gateway.crypto import verify_webhook
from paycore.gateway.domain import Card
from paycore.gateway.webhook_targets import WebhookTargets
from paycore.gateway.webhooks import WebhookDispatcher
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.messaging.consumer import RetryPolicy
from paycore.platform.persistence.uow import Database
from paycore.platform.web.ratelimit import FailureLimit, RateLimiter, retry_after

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def _account_with_decision(
    engine: AsyncEngine, keyring: Keyring, url: str = "https://shop.example/hook"
) -> tuple[str, str]:
    """An account with a webhook URL and one transaction, accepted and decided as the API and
    the result applier do; returns (signing secret, transaction id)."""
    db, hasher = Database(engine), Hasher("p")
    async with db.transaction() as tx:
        created = await service.create_account(
            tx, name="shop", webhook_url=url, hasher=hasher, keyring=keyring, now=NOW
        )
    card = Card(number="4111111111111111", holder="Ana", exp_month=12, exp_year=2030, cvv="123")
    prepared = service.prepare_transaction(
        created.row.id, 1050, card, keyring=keyring, hasher=hasher, now=NOW
    )
    writer = service.transaction_writer(db)
    transaction_id = (await writer.submit(prepared)).id
    await writer.stop()
    async with db.transaction() as tx:
        result = messages.encode_result(transaction_id, "approved", "")
        applied = await service.apply_results(tx, [result], now=NOW)
    assert (applied.verdicts, applied.webhooks) == ([None], 1)
    return created.webhook_secret, transaction_id


async def _delivery(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(store.deliveries))).one()


class Receiver:
    """A webhook receiver behind ``httpx.MockTransport``: records each request and answers
    ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status)


def _dispatcher(
    engine: AsyncEngine,
    keyring: Keyring,
    fake_dns: Any,
    receive: Any,
    *,
    clock: Clock | None = None,
    attempts: int = 3,
    allow_private: bool = False,
) -> tuple[WebhookDispatcher, httpx.AsyncClient]:
    """A dispatcher whose deliveries reach ``receive`` (a MockTransport handler) and its
    client (to close)."""
    client = httpx.AsyncClient(transport=httpx.MockTransport(receive))
    dispatcher = WebhookDispatcher(
        Database(engine),
        keyring,
        client,
        retry=RetryPolicy(attempts, 1, 10),
        targets=WebhookTargets(allow_private=allow_private, resolve=fake_dns),
        clock=clock or Clock(NOW),
    )
    return dispatcher, client


async def test_a_delivery_is_signed_and_sent_once(engine: AsyncEngine, fake_dns: Any) -> None:
    keyring = Keyring.parse(CARD_KEYS)
    signing, tx_id = await _account_with_decision(engine, keyring)
    receiver = Receiver(204)
    dispatcher, client = _dispatcher(engine, keyring, fake_dns, receiver)
    assert await dispatcher.dispatch_once() == 1
    assert await dispatcher.dispatch_once() == 0
    [request] = receiver.requests
    body = orjson.loads(request.content)
    assert body == {
        "event": "transaction.decided",
        "id": tx_id,
        "status": "approved",
        "error_message": "",
        "amount": 10.5,
        "decided_at": "2026-06-15T12:00:00.000Z",
    }
    assert b'"amount":10.50' in request.content
    # sent to the address that was checked, the URL's host kept for the receiver and TLS
    assert str(request.url) == "https://93.184.215.14/hook"
    assert request.headers["host"] == "shop.example"
    assert request.extensions["sni_hostname"] == "shop.example"
    signature = request.headers["paycore-signature"]
    assert verify_webhook(signing, signature, request.content, now=int(time.time()))
    row = await _delivery(engine)
    assert request.headers["paycore-delivery"] == row.id
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 204)
    await client.aclose()


async def test_failures_are_retried_with_backoff_then_given_up(
    engine: AsyncEngine, fake_dns: Any
) -> None:
    keyring = Keyring.parse(CARD_KEYS)
    await _account_with_decision(engine, keyring)
    answers = iter([httpx.Response(500), httpx.ConnectError("refused"), httpx.Response(503)])

    def receiver(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock(NOW)
    dispatcher, client = _dispatcher(engine, keyring, fake_dns, receiver, clock=clock)
    assert await dispatcher.dispatch_once() == 1
    first = await _delivery(engine)
    assert (first.status, first.attempts, first.last_error) == ("pending", 1, "answered 500")
    assert timedelta(seconds=0.5) <= first.next_attempt_at - NOW <= timedelta(seconds=1)
    assert await dispatcher.dispatch_once() == 0  # not due yet
    clock.at = first.next_attempt_at
    assert await dispatcher.dispatch_once() == 1
    second = await _delivery(engine)
    assert second.attempts == 2
    assert second.last_error.startswith("ConnectError")
    assert timedelta(seconds=1) <= second.next_attempt_at - clock.at <= timedelta(seconds=2)
    clock.at = second.next_attempt_at
    assert await dispatcher.dispatch_once() == 1
    last = await _delivery(engine)
    assert (last.status, last.attempts, last.last_status_code) == ("failed", 3, 503)
    clock.at += timedelta(hours=1)
    assert await dispatcher.dispatch_once() == 0
    await client.aclose()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.0.0.5", "a private"),
        ("127.0.0.1", "a loopback"),
        ("169.254.169.254", "a link-local"),  # the cloud's metadata service
        ("::ffff:169.254.169.254", "a link-local"),  # the same, inside IPv6
        ("::1", "a loopback"),
    ],
)
async def test_a_url_refused_at_send_time_fails_at_once_and_is_not_sent(
    engine: AsyncEngine, fake_dns: Any, address: str, kind: str
) -> None:
    """The name was public when the URL was set; it now points into the operator's network
    (DNS rebinding)."""
    keyring = Keyring.parse(CARD_KEYS)
    await _account_with_decision(engine, keyring)
    fake_dns.names["shop.example"] = [address]
    receiver = Receiver()
    dispatcher, client = _dispatcher(engine, keyring, fake_dns, receiver, attempts=8)
    assert await dispatcher.dispatch_once() == 1
    row = await _delivery(engine)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, None)
    assert row.last_error == (
        f"blocked: the webhook URL's host shop.example resolves to {address}, {kind} "
        "address; webhooks go to public addresses only "
        "(unless PAYCORE_GATEWAY_WEBHOOK_ALLOW_PRIVATE=true)"
    )
    assert receiver.requests == []
    assert await dispatcher.dispatch_once() == 0  # not retried
    await client.aclose()


async def test_a_receiver_on_this_host_is_never_reached_through_a_real_socket(
    engine: AsyncEngine,
) -> None:
    """The attack for real: a URL naming a server listening on this host (stored while
    private addresses were allowed, or re-pointed since), the system resolver and a real HTTP
    client: blocked, and the server sees nothing; allowed, the same delivery arrives."""
    keyring = Keyring.parse(CARD_KEYS)
    with WebhookReceiver() as receiver:
        await _account_with_decision(engine, keyring, url=receiver.url)
        async with httpx.AsyncClient(timeout=5) as client:
            for allow_private in (False, True):
                dispatcher = WebhookDispatcher(
                    Database(engine),
                    keyring,
                    client,
                    retry=RetryPolicy(3, 1, 10),
                    targets=WebhookTargets(allow_private=allow_private),
                    clock=Clock(NOW),
                )
                assert await dispatcher.dispatch_once() == 1
                if not allow_private:
                    blocked = await _delivery(engine)
                    assert (blocked.status, receiver.requests) == ("failed", [])
                    assert blocked.last_error.startswith(
                        "blocked: the webhook URL's host 127.0.0.1 is a loopback address"
                    )
                    async with engine.begin() as conn:  # the operator lets it go again
                        await conn.execute(update(store.deliveries).values(status="pending"))
        assert len(receiver.requests) == 1
    assert (await _delivery(engine)).status == "delivered"


async def test_a_name_that_does_not_resolve_is_a_failed_attempt_retried(
    engine: AsyncEngine, fake_dns: Any
) -> None:
    keyring = Keyring.parse(CARD_KEYS)
    await _account_with_decision(engine, keyring, url="https://gone.example/hook")
    clock = Clock(NOW)
    dispatcher, client = _dispatcher(engine, keyring, fake_dns, Receiver(), clock=clock)
    assert await dispatcher.dispatch_once() == 1
    first = await _delivery(engine)
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.last_error.startswith("cannot resolve the webhook host")
    fake_dns.names["gone.example"] = ["93.184.215.14"]  # the record appears
    clock.at = first.next_attempt_at
    assert await dispatcher.dispatch_once() == 1
    assert (await _delivery(engine)).status == "delivered"
    await client.aclose()


async def test_with_private_addresses_allowed_the_url_is_used_as_is(
    engine: AsyncEngine, fake_dns: Any
) -> None:
    keyring = Keyring.parse(CARD_KEYS)
    await _account_with_decision(engine, keyring, url="http://127.0.0.1:9/hook")
    receiver = Receiver()
    dispatcher, client = _dispatcher(engine, keyring, fake_dns, receiver, allow_private=True)
    assert await dispatcher.dispatch_once() == 1
    [request] = receiver.requests
    assert str(request.url) == "http://127.0.0.1:9/hook"
    assert (await _delivery(engine)).status == "delivered"
    assert fake_dns.asked == []  # nothing to check
    await client.aclose()


def test_failure_windows_shut_a_key_out_until_they_end() -> None:
    now = [0.0]
    failures = FailureLimit(3, 60, clock=lambda: now[0])
    for _ in range(2):
        failures.fail("10.0.0.1")
    assert failures.wait("10.0.0.1") == 0.0  # two of three
    now[0] = 10.0
    failures.fail("10.0.0.1")
    assert failures.wait("10.0.0.1") == pytest.approx(50.0)  # the window opened at 0
    assert failures.wait("10.0.0.2") == 0.0  # another address has its own
    now[0] = 60.0
    assert failures.wait("10.0.0.1") == 0.0  # the window is over: a fresh start
    failures.fail("10.0.0.1")
    assert failures.wait("10.0.0.1") == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        FailureLimit(0, 60)


def test_limiters_forget_the_least_recently_seen_key_first() -> None:
    failures = FailureLimit(1, 60, max_keys=2, clock=lambda: 0.0)
    for key in ("a", "b", "c"):
        failures.fail(key)
    assert [failures.wait(k) > 0 for k in ("a", "b", "c")] == [False, True, True]
    limiter = RateLimiter(1.0, 1, max_keys=2, clock=lambda: 0.0)
    assert [limiter.take(k) for k in ("a", "b", "c")] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.0  # forgotten: starts full again
    assert limiter.take("c") > 0


def test_rate_limiter_buckets_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # another account has its own bucket
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    assert retry_after(0.01) == "1"
    assert retry_after(2.2) == "3"


def test_session_cookies_are_signed_and_expire() -> None:
    sessions = Sessions(b"key", lifetime_seconds=60)
    cookie, session = sessions.issue("acc-1", now=1000)
    assert sessions.read(cookie, now=1059) == session
    assert sessions.read(cookie, now=1060) is None  # expired
    assert Sessions(b"other", 60).read(cookie, now=1000) is None
    account, expires, nonce, mac = cookie.split(".")
    assert sessions.read(f"acc-2.{expires}.{nonce}.{mac}", now=1000) is None
    assert sessions.read(f"{account}.99999.{nonce}.{mac}", now=1000) is None
    assert sessions.read("garbage", now=1000) is None
    assert sessions.read(None, now=1000) is None
    _, other = sessions.issue("acc-1", now=1000)
    assert other.csrf != session.csrf  # one CSRF token per session
