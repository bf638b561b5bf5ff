"""The gateway as merchants and the operator use it, in process: accounts, transactions
through the processor and back, scoping, rate limits, failed authentications per client
address, webhook URLs refused, bad input, webhooks queued, the dashboard session and its
streams, the decision metrics. The broker is in memory; the database is a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from gateway_kit import CARD_KEYS
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from web_kit import served

from paycore.gateway import api as gateway_api
from paycore.gateway import consumers, dashboard, live, messages, service, store
from paycore.gateway.auth import Authenticator, Guard, Sessions
from paycore.gateway.webhook_targets import WebhookTargets, system_resolve
from paycore.platform.cards import Hasher, Keyring
from paycore.platform.messaging.bus import CREATED_AT, Delivery
from paycore.platform.messaging.consumer import Consumer
from paycore.platform.messaging.relay import Relay
from paycore.platform.persistence.outbox import outbox
from paycore.platform.persistence.uow import Database
from paycore.platform.settings import Settings
from paycore.platform.web.claims import idempotency_keys
from paycore.platform.web.idempotency import IdempotencyMiddleware, request_fingerprint
from paycore.platform.web.ratelimit import FailureLimit, RateLimiter
from paycore.platform.web.server import server_options

ADMIN = "admin-token-for-tests"
PROBLEM = "application/problem+json"
VISA = "4111111111111111"


def transaction(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": 10.5,
        "credit_card_number": VISA,
        "credit_card_name": "Ana Lima",
        "credit_card_expiration_month": 12,
        "credit_card_expiration_year": 2030,
        "credit_card_cvv": "123",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


class Ticker:
    """A monotonic clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gateway:
    http: httpx.AsyncClient
    engine: AsyncEngine
    db: Database
    relay: Relay
    bus: Any
    keyring: Keyring
    limiter: RateLimiter
    failures: FailureLimit
    clock: Ticker
    slots: live.Slots
    app: Any
    dns: Any

    def client(self, address: str) -> httpx.AsyncClient:
        """Another HTTP client of the same app, calling from ``address``."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gw")

    async def account(self, name: str = "shop", **extra: Any) -> dict[str, Any]:
        answer = await self.http.post(
            "/gateway/accounts", json={"name": name, **extra}, headers=admin()
        )
        assert answer.status_code == 201, answer.text
        data: dict[str, Any] = answer.json()
        return data

    async def pay(self, secret: str, **changes: Any) -> httpx.Response:
        return await self.http.post(
            "/gateway/transactions", json=transaction(**changes), headers=bearer(secret)
        )

    async def process(self) -> None:
        """Relay the outbox and run both consumers until nothing is left in flight."""
        processor = self._consumer(*consumers.processor(self.keyring))
        results = self._consumer(*consumers.results())
        while await self.relay.relay_once():
            published, self.bus.published = self.bus.published, []
            for topic, consumer in (
                (messages.TRANSACTIONS, processor),
                (messages.RESULTS, results),
            ):
                batch = [_delivery(e) for e in published if e.topic == topic]
                if batch:
                    await consumer.handle_batch(batch)

    def _consumer(self, subscription: Any, handler: Any) -> Consumer:
        return Consumer(subscription=subscription, handler=handler, db=self.db, bus=self.bus)


def _delivery(envelope: Any) -> Delivery:
    return Delivery(
        envelope.topic, envelope.body, envelope.id, envelope.key, dict(envelope.headers)
    )


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body: dict[str, Any] = answer.json()
    assert body["code"] == code
    return body


@contextlib.asynccontextmanager
async def wired(
    engine: AsyncEngine,
    bus: Any,
    dns: Any,
    *,
    fast_lane: bool = True,
    stream_seconds: float = 0.5,
    poll_seconds: float = 0.02,
    allow_private: bool = False,
) -> AsyncIterator[Gateway]:
    """The gateway wired as the API process wires it (``paycore.gateway.processes``)."""
    keyring, hasher = Keyring.parse(CARD_KEYS), Hasher("test-pepper")
    relay = Relay(engine, bus)
    db = Database(engine, relay.handoff)
    writer: gateway_api.Writer = service.transaction_writer(db)
    limiter, clock, slots = RateLimiter(1000, 1000), Ticker(), live.Slots(5)
    failures = FailureLimit(20, 60, clock=clock)
    guard = Guard(
        Authenticator(db.connect, hasher, ttl_seconds=0),
        limiter,
        Sessions(hasher.session_key, 3600),
        failures,
    )
    wired_api = gateway_api.GatewayApi(
        db=db,
        guard=guard,
        writer=writer,
        keyring=keyring,
        hasher=hasher,
        admin_token=ADMIN,
        targets=WebhookTargets(allow_private=allow_private, resolve=dns),
        cookie_path="/gateway",
        poll_seconds=poll_seconds,
        stream_seconds=stream_seconds,
        slots=slots,
    )
    app = served(
        [(gateway_api.routes, "/gateway"), (dashboard.routes, "/gateway")],
        state={"gateway": wired_api},
        fast_lane=fast_lane,
        middleware=[(IdempotencyMiddleware, {"db": lambda: db, "secret": b"test-pepper"})],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield Gateway(
            http, engine, db, relay, bus, keyring, limiter, failures, clock, slots, app, dns
        )
    await writer.stop()


@pytest.fixture(params=["fast-lane", "framework-route"])
async def gateway(
    request: pytest.FixtureRequest, engine: AsyncEngine, fake_bus: Any, fake_dns: Any
) -> AsyncIterator[Gateway]:
    """With and without the fast lane in front of the documented route."""
    async with wired(engine, fake_bus, fake_dns, fast_lane=request.param == "fast-lane") as gw:
        yield gw


# --- accounts ------------------------------------------------------------------------------


async def test_the_operator_manages_accounts_and_secrets_are_shown_once(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    created = await gateway.account("Loja da Ana", webhook_url="https://shop.example/hooks")
    assert created["secret"].startswith("pcsk_")
    assert created["webhook_secret"].startswith("whsec_")
    assert created["status"] == "active"
    assert created["webhook_url"] == "https://shop.example/hooks"
    shown = (await gateway.http.get(f"/gateway/accounts/{created['id']}", headers=admin())).json()
    assert "secret" not in shown
    assert "webhook_secret" not in shown
    assert shown["secret_hint"] == created["secret"][:9]
    async with engine.connect() as conn:
        row = await store.find_account(conn, created["id"])
    assert row is not None
    assert created["secret"] not in str(tuple(row))
    assert created["webhook_secret"] not in str(tuple(row))

    patched = await gateway.http.patch(
        f"/gateway/accounts/{created['id']}",
        json={"name": "Loja", "webhook_url": None},
        headers=admin(),
    )
    assert (patched.json()["name"], patched.json()["webhook_url"]) == ("Loja", None)
    listed = await gateway.http.get("/gateway/accounts", headers=admin())
    assert [a["id"] for a in listed.json()] == [created["id"]]
    problem(
        await gateway.http.patch(
            f"/gateway/accounts/{created['id']}", json={"name": None}, headers=admin()
        ),
        422,
        "validation-error",
    )
    unknown = "00000000-0000-7000-8000-000000000000"
    problem(
        await gateway.http.get(f"/gateway/accounts/{unknown}", headers=admin()), 404, "not-found"
    )
    problem(
        await gateway.http.get("/gateway/accounts/nope", headers=admin()), 422, "validation-error"
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic YWRtaW4="}],
)
async def test_admin_routes_need_the_admin_token(gateway: Gateway, headers: dict[str, str]) -> None:
    answer = await gateway.http.post("/gateway/accounts", json={"name": "x"}, headers=headers)
    problem(answer, 401, "unauthorized")
    account = await gateway.account()
    # a merchant secret is not an admin token
    problem(
        await gateway.http.get("/gateway/accounts", headers=bearer(account["secret"])),
        401,
        "unauthorized",
    )


async def test_without_an_admin_token_configured_admin_routes_are_off(engine: AsyncEngine) -> None:
    hasher, db = Hasher("p"), Database(engine)
    guard = Guard(
        Authenticator(db.connect, hasher),
        RateLimiter(1, 1),
        Sessions(b"k", 60),
        FailureLimit(20, 60),
    )
    writer: gateway_api.Writer = service.transaction_writer(db)
    no_admin = gateway_api.GatewayApi(
        db=db,
        guard=guard,
        writer=writer,
        keyring=Keyring.parse(CARD_KEYS),
        hasher=hasher,
        admin_token="",
        targets=WebhookTargets(allow_private=False),
        cookie_path="/",
        poll_seconds=1,
        stream_seconds=1,
        slots=live.Slots(1),
    )
    app = served([(gateway_api.routes, "")], state={"gateway": no_admin})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://x"
    ) as http:
        answer = await http.post(
            "/accounts", json={"name": "x"}, headers={"Authorization": "Bearer "}
        )
    assert "PAYCORE_ADMIN_TOKEN" in problem(answer, 503, "admin-disabled")["detail"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://user:pw@shop.example/h", "must not carry a user name or password"),
        ("http://127.0.0.1:8080/h", "host 127.0.0.1 is a loopback address"),
        ("http://2130706433/h", "host 127.0.0.1 is a loopback address"),  # a number for a host
        ("http://[::1]/h", "host ::1 is a loopback address"),
        ("http://localhost/h", "localhost resolves to 127.0.0.1, a loopback address"),
        ("https://intranet.example/h", "resolves to 10.1.2.3, a private address"),
        ("http://192.168.0.1/h", "is a private address"),
        ("http://169.254.169.254/latest/meta-data", "is a link-local address"),
        ("http://224.0.0.1/h", "is a multicast address"),
        ("http://240.0.0.1/h", "is a reserved address"),
        ("http://0.0.0.0/h", "is an unspecified address"),
        ("https://mapped-metadata.example/", "resolves to ::ffff:169.254.169.254, a link-local"),
        ("http://[::ffff:169.254.169.254]/latest", "is a link-local address"),
    ],
)
async def test_webhook_urls_into_private_networks_are_refused(
    gateway: Gateway, url: str, says: str
) -> None:
    created = await gateway.http.post(
        "/gateway/accounts", json={"name": "x", "webhook_url": url}, headers=admin()
    )
    assert says in problem(created, 422, "webhook-url-not-allowed")["detail"]
    account = await gateway.account(webhook_url="https://shop.example/hooks")
    patched = await gateway.http.patch(
        f"/gateway/accounts/{account['id']}", json={"webhook_url": url}, headers=admin()
    )
    assert says in problem(patched, 422, "webhook-url-not-allowed")["detail"]
    kept = await gateway.http.get(f"/gateway/accounts/{account['id']}", headers=admin())
    assert kept.json()["webhook_url"] == "https://shop.example/hooks"


async def test_with_the_system_resolver_local_names_are_refused_too(
    engine: AsyncEngine, fake_bus: Any
) -> None:
    """The API as deployed resolves names itself: ``localhost`` (from /etc/hosts) and a
    mapped metadata address are refused at set time (issue 22, item 20)."""
    async with wired(engine, fake_bus, system_resolve) as gw:
        for url in ("http://localhost:8000/hooks", "http://[::ffff:169.254.169.254]/"):
            answer = await gw.http.post(
                "/gateway/accounts", json={"name": "x", "webhook_url": url}, headers=admin()
            )
            problem(answer, 422, "webhook-url-not-allowed")


async def test_webhook_urls_must_be_http(gateway: Gateway) -> None:
    for url in ("ftp://shop.example/h", "javascript:alert(1)", "file:///etc/passwd"):
        answer = await gateway.http.post(
            "/gateway/accounts", json={"name": "x", "webhook_url": url}, headers=admin()
        )
        refused = problem(answer, 422, "validation-error")
        assert refused["errors"][0]["loc"] == ["body", "webhook_url"]


async def test_a_webhook_host_that_does_not_resolve_yet_is_accepted(gateway: Gateway) -> None:
    account = await gateway.account(webhook_url="https://not-yet.example/hooks")
    assert account["webhook_url"] == "https://not-yet.example/hooks"


async def test_private_webhook_urls_when_allowed(
    engine: AsyncEngine, fake_bus: Any, fake_dns: Any
) -> None:
    async with wired(engine, fake_bus, fake_dns, allow_private=True) as gateway:
        account = await gateway.account(webhook_url="http://127.0.0.1:9000/hooks")
        assert account["webhook_url"] == "http://127.0.0.1:9000/hooks"
        refused = await gateway.http.post(
            "/gateway/accounts",
            json={"name": "x", "webhook_url": "http://u:p@127.0.0.1/h"},
            headers=admin(),
        )
        problem(refused, 422, "webhook-url-not-allowed")  # credentials are never allowed


# --- transactions end to end ---------------------------------------------------------------


async def test_a_transaction_is_accepted_pending_then_decided(gateway: Gateway) -> None:
    secret = (await gateway.account())["secret"]
    accepted = await gateway.pay(secret, amount=1000.00)
    assert accepted.status_code == 202, accepted.text
    tx = accepted.json()
    assert tx["status"] == "pending"
    assert tx["error_message"] == ""
    assert tx["decided_at"] is None
    assert tx["card"]["brand"] == "visa"
    assert tx["card"]["last4"] == "1111"
    assert '"amount":1000.00' in accepted.text  # exact, two places
    await gateway.process()
    got = await gateway.http.get(f"/gateway/transactions/{tx['id']}", headers=bearer(secret))
    assert got.status_code == 200, got.text
    decided = got.json()
    assert (decided["status"], decided["error_message"]) == ("approved", "")
    assert decided["decided_at"] is not None


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"amount": 0.99}, "rejected", "the amount must be greater than 1"),
        ({"amount": 1.00}, "approved", ""),
        ({"amount": 1000}, "approved", ""),
        ({"amount": 1000.01}, "rejected", "you dont have limit for this transaction"),
        ({"credit_card_number": "4111111111111112"}, "rejected", "invalid credit card number"),
        ({"credit_card_expiration_month": 13}, "rejected", "invalid expiration month"),
        ({"credit_card_expiration_year": 2001}, "rejected", "invalid expiration year"),
        ({"credit_card_cvv": "12"}, "rejected", "invalid cvv"),
    ],
)
async def test_the_processor_decides_with_the_exact_messages(
    gateway: Gateway, changes: dict[str, Any], status: str, message: str
) -> None:
    secret = (await gateway.account())["secret"]
    tx = (await gateway.pay(secret, **changes)).json()
    await gateway.process()
    got = (
        await gateway.http.get(f"/gateway/transactions/{tx['id']}", headers=bearer(secret))
    ).json()
    assert (got["status"], got["error_message"]) == (status, message)


async def test_each_transaction_is_decided_once_even_when_messages_repeat(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    secret = (await gateway.account(webhook_url="https://shop.example/h"))["secret"]
    for _ in range(3):
        assert (await gateway.pay(secret)).status_code == 202
    await gateway.relay.relay_once()
    sent = list(gateway.bus.published)
    gateway.bus.published = []
    processor = gateway._consumer(*consumers.processor(gateway.keyring))
    # the same transactions published twice under new message ids (a re-publish)
    again = [Delivery(e.topic, e.body, e.id + "-again", e.key, {}) for e in sent]
    await processor.handle_batch([_delivery(e) for e in sent])
    await processor.handle_batch(again)
    await gateway.relay.relay_once()
    results = [e for e in gateway.bus.published if e.topic == messages.RESULTS]
    assert len(results) == 3
    applier = gateway._consumer(*consumers.results())
    await applier.handle_batch([_delivery(e) for e in results])
    await applier.handle_batch([Delivery(e.topic, e.body, e.id + "-x", e.key, {}) for e in results])
    async with engine.connect() as conn:
        decided = await conn.scalar(select(func.count()).select_from(store.decisions))
        hooks = await conn.scalar(select(func.count()).select_from(store.deliveries))
        statuses = await store.status_counts(conn, (await _only_account(conn)))
    assert (decided, hooks) == (3, 3)
    assert statuses == {"approved": (3, 3150)}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


DECIDED = "paycore_gateway_decisions_total"
LATENCY_COUNT = "paycore_gateway_decision_seconds_count"


async def test_decisions_are_counted_by_status_once_each(gateway: Gateway) -> None:
    before = [sample(DECIDED, status=s) for s in ("approved", "rejected")]
    timed = sample(LATENCY_COUNT)
    secret = (await gateway.account())["secret"]
    for amount in (10.00, 0.50, 2000.00):
        assert (await gateway.pay(secret, amount=amount)).status_code == 202
    await gateway.relay.relay_once()
    sent = [e for e in gateway.bus.published if e.topic == messages.TRANSACTIONS]
    processor = gateway._consumer(*consumers.processor(gateway.keyring))
    await processor.handle_batch([_delivery(e) for e in sent])
    # redelivered, and re-published under new message ids: decided already, not counted
    await processor.handle_batch([_delivery(e) for e in sent])
    await processor.handle_batch([Delivery(e.topic, e.body, e.id + "-2", e.key, {}) for e in sent])
    after = [sample(DECIDED, status=s) for s in ("approved", "rejected")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 2]
    assert sample(LATENCY_COUNT) - timed == 3  # accepted -> decided, from the event's time


async def test_decisions_rolled_back_are_not_counted(gateway: Gateway, engine: AsyncEngine) -> None:
    secret = (await gateway.account())["secret"]
    await gateway.pay(secret, amount=0.50)
    await gateway.relay.relay_once()
    [sent] = [e for e in gateway.bus.published if e.topic == messages.TRANSACTIONS]
    _, handle = consumers.processor(gateway.keyring)
    before, timed = sample(DECIDED, status="rejected"), sample(LATENCY_COUNT)

    async def failing_batch() -> None:
        async with gateway.db.transaction() as tx:
            await handle(tx, [_delivery(sent)])
            raise RuntimeError("the batch fails after the handler ran")

    with pytest.raises(RuntimeError):
        await failing_batch()
    assert sample(DECIDED, status="rejected") == before
    async with gateway.db.transaction() as tx:
        await handle(tx, [_delivery(sent)])  # handled again, committed
    assert sample(DECIDED, status="rejected") == before + 1
    assert sample(LATENCY_COUNT) == timed + 1
    assert CREATED_AT in sent.headers


async def _only_account(conn: Any) -> str:
    return str((await conn.execute(select(store.accounts.c.id))).scalar_one())


async def test_results_for_unknown_transactions_are_dead_lettered(gateway: Gateway) -> None:
    from paycore.platform.messaging.deadletters import dead_letters

    applier = gateway._consumer(*consumers.results())
    body = messages.encode_result("no-such-id", "approved", "")
    await applier.handle_batch([Delivery(messages.RESULTS, body, "m1", None, {})])
    async with gateway.engine.connect() as conn:
        errors = (await conn.execute(select(dead_letters.c.error))).scalars().all()
    assert errors == ["transaction no-such-id is unknown"]


async def test_card_data_never_rests_in_clear(gateway: Gateway, engine: AsyncEngine) -> None:
    secret = (await gateway.account())["secret"]
    answer = await gateway.pay(
        secret,
        credit_card_number="5555555555554444",
        credit_card_cvv="987",
        credit_card_name="Zé Holder",
    )
    assert answer.json()["card"]["holder"] == "Zé Holder"  # shown to the merchant, opened
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox))).all()
        stored = (await conn.execute(select(store.transactions))).all()
    assert len(rows) == 1
    assert b"5555555555554444" not in rows[0].body
    assert "5555555555554444" not in str([tuple(r) for r in stored])
    assert "Zé Holder" not in str([tuple(r) for r in stored])  # sealed, not in clear
    # not even sealed does the CVV (nor the holder) leave the API: only its verdict
    event = messages.decode_transaction(rows[0].body)
    plain = orjson.loads(gateway.keyring.open(event.card, event.id))
    assert sorted(plain) == ["cvv_ok", "exp_month", "exp_year", "number"]
    assert plain["cvv_ok"] is True
    await gateway.process()
    assert all(b"5555555555554444" not in e.body for e in gateway.bus.published)
    listed = await gateway.http.get("/gateway/transactions", headers=bearer(secret))
    assert [t["card"]["holder"] for t in listed.json()["data"]] == ["Zé Holder"]


async def test_one_card_has_a_fingerprint_per_merchant_and_one_for_the_operator(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    """Merchants comparing notes cannot match a customer's card: each sees its own fingerprint
    (stable for it); the platform-wide one is stored for the operator and never shown."""
    ana, bia = (await gateway.account("ana"))["secret"], (await gateway.account("bia"))["secret"]
    seen = {
        who: [(await gateway.pay(secret)).json() for _ in range(2)]
        for who, secret in (("ana", ana), ("bia", bia))
    }
    fingerprints = {who: {t["card"]["fingerprint"] for t in txs} for who, txs in seen.items()}
    assert all(len(each) == 1 for each in fingerprints.values())  # stable per merchant
    assert fingerprints["ana"] != fingerprints["bia"]
    async with engine.connect() as conn:
        platform = set(
            (await conn.execute(select(store.transactions.c.platform_fingerprint))).scalars()
        )
    assert platform == {Hasher("test-pepper").platform_fingerprint(VISA)}  # one for the operator
    shown = orjson.dumps(seen).decode()
    assert platform.pop() not in shown
    assert "platform_fingerprint" not in shown


async def test_holder_names_stored_in_clear_by_earlier_releases_are_sealed(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    secret = (await gateway.account())["secret"]
    ids = [(await gateway.pay(secret, credit_card_name=f"Old {n}")).json()["id"] for n in range(3)]
    async with engine.begin() as conn:  # as a release before the names were sealed stored them
        for n, tx_id in enumerate(ids):
            await conn.execute(
                update(store.transactions)
                .where(store.transactions.c.id == tx_id)
                .values(holder=f"Old {n}", holder_sealed=None)
            )
    listed = await gateway.http.get("/gateway/transactions", headers=bearer(secret))
    assert {t["card"]["holder"] for t in listed.json()["data"]} == {"Old 0", "Old 1", "Old 2"}
    assert await service.seal_clear_holders(gateway.db, gateway.keyring, batch=2) == 3
    assert await service.seal_clear_holders(gateway.db, gateway.keyring) == 0
    async with engine.connect() as conn:
        rows = (await conn.execute(select(store.transactions))).all()
    assert {r.holder for r in rows} == {None}
    assert "Old 1" not in str([tuple(r) for r in rows])
    listed = await gateway.http.get("/gateway/transactions", headers=bearer(secret))
    assert {t["card"]["holder"] for t in listed.json()["data"]} == {"Old 0", "Old 1", "Old 2"}


async def test_a_holder_sealed_under_a_dropped_key_shows_as_null(gateway: Gateway) -> None:
    secret = (await gateway.account())["secret"]
    tx = (await gateway.pay(secret)).json()
    async with gateway.db.connect() as conn:
        row = await store.find_transaction(conn, tx["account_id"], tx["id"])
    other = Keyring.parse("k9:" + "C" * 43 + "=")
    assert store.holder_of(other, row) is None
    assert store.holder_of(gateway.keyring, row) == "Ana Lima"


# --- scoping, credentials, rate limit ------------------------------------------------------


async def test_every_query_is_scoped_to_the_callers_account(gateway: Gateway) -> None:
    ana, bia = (await gateway.account("ana"))["secret"], (await gateway.account("bia"))["secret"]
    tx = (await gateway.pay(ana)).json()
    problem(
        await gateway.http.get(f"/gateway/transactions/{tx['id']}", headers=bearer(bia)),
        404,
        "not-found",
    )
    assert (await gateway.http.get("/gateway/transactions", headers=bearer(bia))).json()[
        "data"
    ] == []
    own = await gateway.http.get(f"/gateway/transactions/{tx['id']}", headers={"x-token": ana})
    assert own.status_code == 200  # the seed's header


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer pcsk_wrong"}, {"x-token": "nope"}, {"Authorization": "Bearer"}],
)
async def test_bad_secrets_are_401(gateway: Gateway, headers: dict[str, str]) -> None:
    await gateway.account()
    answer = await gateway.http.post("/gateway/transactions", json=transaction(), headers=headers)
    problem(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"
    problem(await gateway.http.get("/gateway/transactions", headers=headers), 401, "unauthorized")


async def test_a_disabled_account_is_refused(gateway: Gateway) -> None:
    account = await gateway.account()
    assert (await gateway.pay(account["secret"])).status_code == 202
    gone = await gateway.http.delete(f"/gateway/accounts/{account['id']}", headers=admin())
    assert gone.json()["status"] == "disabled"
    problem(await gateway.pay(account["secret"]), 401, "unauthorized")


async def test_rate_limit_answers_429_with_retry_after(gateway: Gateway) -> None:
    secret = (await gateway.account())["secret"]
    gateway.limiter.rate, gateway.limiter.burst = 0.5, 2.0
    answers = [await gateway.pay(secret) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert problem(answers[2], 429, "rate-limited")
    assert answers[2].headers["retry-after"] == "2"


async def test_bad_secrets_from_one_address_are_401_then_429_until_the_window_ends(
    gateway: Gateway,
) -> None:
    account = await gateway.account()
    gateway.failures.limit = 3
    for guess in ("pcsk_wrong1", "pcsk_wrong2", "nope"):
        problem(await gateway.pay(guess), 401, "unauthorized")
    # shut out: even with the right secret, on every route taking one, and at the login
    refused = await gateway.pay(account["secret"])
    assert "Too many invalid account secrets" in problem(refused, 429, "rate-limited")["detail"]
    assert refused.headers["retry-after"] == "60"
    listing = await gateway.http.get(
        "/gateway/transactions", headers={"x-token": account["secret"]}
    )
    problem(listing, 429, "rate-limited")
    login = await gateway.http.post("/gateway/dashboard/login", json={"secret": account["secret"]})
    problem(login, 429, "rate-limited")
    async with gateway.client("10.9.8.7") as elsewhere:  # another address is not affected
        answer = await elsewhere.post(
            "/gateway/transactions", json=transaction(), headers=bearer(account["secret"])
        )
        assert answer.status_code == 202
    gateway.clock.now += 45
    assert (await gateway.pay(account["secret"])).headers["retry-after"] == "15"
    gateway.clock.now += 15  # the window is over
    assert (await gateway.pay(account["secret"])).status_code == 202
    problem(await gateway.pay("pcsk_wrong3"), 401, "unauthorized")  # counting starts afresh
    assert (await gateway.pay(account["secret"])).status_code == 202


@contextlib.asynccontextmanager
async def behind_uvicorn(app: Any, trusted_proxies: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling ``app`` from 127.0.0.1 through uvicorn's own stack as ``paycore api``
    configures it (``server_options``), proxy header handling included."""
    settings = Settings(_env_file=None, trusted_proxies=trusted_proxies)  # type: ignore[call-arg]
    config = uvicorn.Config(app, port=0, **server_options(settings))
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


async def test_forwarded_addresses_do_not_escape_the_failed_secret_window(
    engine: AsyncEngine, fake_bus: Any, fake_dns: Any
) -> None:
    """With no trusted proxy (the default), a client on 127.0.0.1 naming a new
    X-Forwarded-For each time is still one address: 20 bad secrets, then 429 (issue 22,
    item 15)."""
    async with wired(engine, fake_bus, fake_dns) as gw, behind_uvicorn(gw.app, "") as http:
        statuses = [
            (
                await http.get("/gateway/transactions", headers=forwarded(f"203.0.113.{n}"))
            ).status_code
            for n in range(25)
        ]
    assert statuses == [401] * 20 + [429] * 5


async def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(
    engine: AsyncEngine, fake_bus: Any, fake_dns: Any
) -> None:
    async with (
        wired(engine, fake_bus, fake_dns) as gw,
        behind_uvicorn(gw.app, "10.0.0.0/8, 127.0.0.1") as http,
    ):
        rotating = [
            (
                await http.get("/gateway/transactions", headers=forwarded(f"203.0.113.{n}"))
            ).status_code
            for n in range(25)
        ]
        one = [
            (await http.get("/gateway/transactions", headers=forwarded("198.51.100.7"))).status_code
            for _ in range(21)
        ]
        other = await http.get("/gateway/transactions", headers=forwarded("198.51.100.8"))
    assert rotating == [401] * 25  # 25 clients, one failure each
    assert one == [401] * 20 + [429]  # one client shut out by its own failures
    assert other.status_code == 401  # not its neighbour


def forwarded(address: str) -> dict[str, str]:
    return {"Authorization": "Bearer pcsk_bad", "X-Forwarded-For": address}


def test_trusted_proxies_must_be_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).trusted_proxy_list == []  # type: ignore[call-arg]
    assert server_options(Settings(_env_file=None))["proxy_headers"] is False  # type: ignore[call-arg]
    monkeypatch.setenv("PAYCORE_TRUSTED_PROXIES", "10.0.0.1, fd00::/8")
    trusted = Settings(_env_file=None)  # type: ignore[call-arg]
    assert server_options(trusted)["forwarded_allow_ips"] == ["10.0.0.1", "fd00::/8"]
    monkeypatch.setenv("PAYCORE_TRUSTED_PROXIES", "10.0.0.1,nginx")
    with pytest.raises(ValidationError, match="'nginx' is not an IP address or network"):
        Settings(_env_file=None)  # type: ignore[call-arg]


async def test_bad_logins_and_disabled_secrets_count_but_open_sessions_go_on(
    gateway: Gateway,
) -> None:
    ana, bia = await gateway.account("ana"), await gateway.account("bia")
    logged_in = await gateway.http.post("/gateway/dashboard/login", json={"secret": ana["secret"]})
    assert logged_in.status_code == 200
    gateway.failures.limit = 2
    await gateway.http.delete(f"/gateway/accounts/{bia['id']}", headers=admin())
    problem(await gateway.pay(bia["secret"]), 401, "unauthorized")  # a disabled account's
    guess = await gateway.http.post("/gateway/dashboard/login", json={"secret": "pcsk_guess"})
    problem(guess, 401, "unauthorized")
    problem(await gateway.pay(ana["secret"]), 429, "rate-limited")
    # the session opened before guesses nothing: its reads are served
    assert (await gateway.http.get("/gateway/transactions")).status_code == 200


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (transaction(amount=...), 422, "validation-error"),
        (transaction(credit_card_cvv=...), 422, "validation-error"),
        (transaction(extra="x"), 422, "validation-error"),
        (transaction(amount=-5), 422, "validation-error"),
        (transaction(amount=0), 422, "validation-error"),
        (transaction(amount="10.001"), 422, "validation-error"),
        (transaction(amount=10.001), 422, "validation-error"),
        (transaction(amount="ten"), 422, "validation-error"),
        (transaction(amount=True), 422, "validation-error"),
        (transaction(amount="NaN"), 422, "validation-error"),
        (transaction(amount="10.00"), 422, "validation-error"),  # money is a JSON number
        (transaction(credit_card_cvv=123), 422, "validation-error"),  # a CVV is a string
        (transaction(credit_card_name="Ana\u0000Lima"), 422, "validation-error"),
        (transaction(credit_card_number="4111-1111-1111-1111"), 422, "validation-error"),
        (transaction(credit_card_number="41111111111111111111"), 422, "validation-error"),
        (transaction(credit_card_number=4111111111111111), 422, "validation-error"),
        (transaction(credit_card_expiration_month="12"), 422, "validation-error"),
        (transaction(credit_card_expiration_month=12.0), 422, "validation-error"),
        (transaction(credit_card_expiration_year=None), 422, "validation-error"),
        (transaction(credit_card_cvv="12a"), 422, "validation-error"),
        (transaction(credit_card_cvv=True), 422, "validation-error"),
        (transaction(credit_card_name=" "), 422, "validation-error"),
        ([1, 2], 422, "validation-error"),
    ],
)
async def test_bad_transactions_are_4xx_and_write_nothing(
    gateway: Gateway, engine: AsyncEngine, body: Any, status: int, code: str
) -> None:
    secret = (await gateway.account())["secret"]
    answer = await gateway.http.post("/gateway/transactions", json=body, headers=bearer(secret))
    details = problem(answer, status, code)
    assert VISA not in answer.text
    assert VISA not in str(details)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(store.transactions)) == 0
        assert await conn.scalar(select(func.count()).select_from(outbox)) == 0


async def test_malformed_json_and_huge_bodies(gateway: Gateway) -> None:
    secret = (await gateway.account())["secret"]
    headers = {**bearer(secret), "content-type": "application/json"}
    problem(
        await gateway.http.post("/gateway/transactions", content=b"{nope", headers=headers),
        400,
        "malformed-json",
    )
    huge = orjson.dumps(transaction(credit_card_name="x" * 100_000))
    answer = await gateway.http.post("/gateway/transactions", content=huge, headers=headers)
    problem(answer, 413, "body-too-large")


async def test_an_idempotency_key_replays_and_refuses_another_body(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    secret = (await gateway.account())["secret"]
    headers = {**bearer(secret), "Idempotency-Key": "k-1"}
    first = await gateway.http.post("/gateway/transactions", json=transaction(), headers=headers)
    again = await gateway.http.post("/gateway/transactions", json=transaction(), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await gateway.http.post(
        "/gateway/transactions", json=transaction(amount=11), headers=headers
    )
    problem(other, 422, "idempotency-key-reused")
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(store.transactions)) == 1
        stored = await conn.scalar(select(idempotency_keys.c.request_hash))
    # the body holds a card number: its stored fingerprint is keyed, not a plain SHA-256
    body = orjson.dumps(transaction())
    assert stored == request_fingerprint("POST", "/gateway/transactions", b"", body, b"test-pepper")
    assert stored != request_fingerprint("POST", "/gateway/transactions", b"", body)


# --- listing -------------------------------------------------------------------------------


async def test_listing_is_newest_first_paginated_and_filtered(gateway: Gateway) -> None:
    secret = (await gateway.account())["secret"]
    ids = []
    for amount in (5.00, 0.50, 7.00, 2000.00, 9.00):
        ids.append((await gateway.pay(secret, amount=amount)).json()["id"])
        await asyncio.sleep(0.002)  # distinct milliseconds: ids sort by creation
    await gateway.process()
    page = (await gateway.http.get("/gateway/transactions?limit=2", headers=bearer(secret))).json()
    assert [t["id"] for t in page["data"]] == ids[::-1][:2]
    rest = await gateway.http.get(
        f"/gateway/transactions?limit=10&cursor={page['next_cursor']}", headers=bearer(secret)
    )
    assert [t["id"] for t in rest.json()["data"]] == ids[::-1][2:]
    assert rest.json()["next_cursor"] is None
    rejected = await gateway.http.get(
        "/gateway/transactions?status=rejected", headers=bearer(secret)
    )
    assert [t["id"] for t in rejected.json()["data"]] == [ids[3], ids[1]]
    future = datetime(2100, 1, 1, tzinfo=UTC).isoformat()
    later = await gateway.http.get(
        "/gateway/transactions", params={"from": future}, headers=bearer(secret)
    )
    assert later.json()["data"] == []
    stats = (await gateway.http.get("/gateway/stats", headers=bearer(secret))).json()
    assert stats["approved"] == {"count": 3, "amount": 21.0}
    assert stats["rejected"]["count"] == 2
    assert stats["pending"]["count"] == 0
    problem(
        await gateway.http.get("/gateway/transactions?status=lost", headers=bearer(secret)),
        422,
        "validation-error",
    )


async def test_webhook_deliveries_are_queued_and_listable(gateway: Gateway) -> None:
    with_hook = await gateway.account(webhook_url="https://shop.example/hook")
    without = await gateway.account("plain")
    tx = (await gateway.pay(with_hook["secret"], amount=0.99)).json()
    await gateway.pay(without["secret"])
    await gateway.process()
    listed = await gateway.http.get(
        "/gateway/webhook-deliveries", headers=bearer(with_hook["secret"])
    )
    [delivery] = listed.json()["data"]
    assert (delivery["transaction_id"], delivery["status"], delivery["attempts"]) == (
        tx["id"],
        "pending",
        0,
    )
    none = await gateway.http.get("/gateway/webhook-deliveries", headers=bearer(without["secret"]))
    assert none.json()["data"] == []


# --- dashboard session ---------------------------------------------------------------------


async def test_dashboard_login_sets_a_strict_http_only_cookie_and_logout_needs_csrf(
    gateway: Gateway,
) -> None:
    account = await gateway.account("ana")
    page = await gateway.http.get("/gateway/dashboard")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    problem(
        await gateway.http.post("/gateway/dashboard/login", json={"secret": "pcsk_nope"}),
        401,
        "unauthorized",
    )
    problem(
        await gateway.http.post(
            "/gateway/dashboard/login",
            json={"secret": account["secret"]},
            headers={"Origin": "https://evil.example"},
        ),
        403,
        "cross-origin",
    )
    login = await gateway.http.post("/gateway/dashboard/login", json={"secret": account["secret"]})
    assert login.status_code == 200
    cookie = login.headers["set-cookie"]
    assert re.search(r"(?i)httponly", cookie)
    assert re.search(r"(?i)samesite=strict", cookie)
    assert account["secret"] not in cookie
    csrf = login.json()["csrf"]
    session = await gateway.http.get("/gateway/dashboard/session")
    assert session.json() == {"account": {"id": account["id"], "name": "ana"}, "csrf": csrf}
    # the cookie reads the merchant's own transactions, but never writes
    assert (await gateway.http.get("/gateway/transactions")).status_code == 200
    problem(
        await gateway.http.post("/gateway/transactions", json=transaction()), 401, "unauthorized"
    )
    problem(await gateway.http.post("/gateway/dashboard/logout"), 403, "csrf-failed")
    out = await gateway.http.post("/gateway/dashboard/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    problem(await gateway.http.get("/gateway/dashboard/session"), 401, "unauthorized")


async def test_the_event_stream_pushes_changes_of_the_account(gateway: Gateway) -> None:
    account = await gateway.account("ana")
    other = await gateway.account("bia")
    await gateway.http.post("/gateway/dashboard/login", json={"secret": account["secret"]})
    events: list[str] = []

    async def listen() -> None:
        async with gateway.http.stream("GET", "/gateway/dashboard/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                events.append(line)

    listening = asyncio.create_task(listen())
    await asyncio.sleep(0.1)
    mine = (await gateway.pay(account["secret"], amount=0.50)).json()
    await gateway.pay(other["secret"])
    await gateway.process()
    await asyncio.wait_for(listening, 5)  # the stream ends after its lifetime
    parsed = parse_sse("\n".join(events))
    assert parsed[0][0] == "stats"
    seen = [(t["id"], t["status"]) for name, data in parsed if name == "transactions" for t in data]
    assert (mine["id"], "pending") in seen
    assert (mine["id"], "rejected") in seen
    assert all(tx_id == mine["id"] for tx_id, _ in seen)


async def test_an_account_holds_at_most_five_streams_and_an_ended_one_frees_its_slot(
    gateway: Gateway,
) -> None:
    account = await gateway.account("ana")
    await gateway.http.post("/gateway/dashboard/login", json={"secret": account["secret"]})
    opened = [asyncio.create_task(gateway.http.get("/gateway/dashboard/events")) for _ in range(5)]
    while gateway.slots.held(account["id"]) < 5:
        await asyncio.sleep(0.01)
    refused = await gateway.http.get("/gateway/dashboard/events")
    assert (
        "already has 5 dashboard streams open"
        in problem(refused, 429, "too-many-streams")["detail"]
    )
    assert refused.headers["retry-after"] == "1"  # a stream lives 0.5 s here
    other = await gateway.account("bia")  # another account has its own slots
    async with gateway.client("127.0.0.1") as bia:
        await bia.post("/gateway/dashboard/login", json={"secret": other["secret"]})
        assert (await bia.get("/gateway/dashboard/events")).status_code == 200
    answers = await asyncio.gather(*opened)  # each ends after its lifetime
    assert [a.status_code for a in answers] == [200] * 5
    assert gateway.slots.held(account["id"]) == 0
    assert (await gateway.http.get("/gateway/dashboard/events")).status_code == 200


async def test_a_stream_the_browser_leaves_frees_its_slot_at_once(
    engine: AsyncEngine, fake_bus: Any, fake_dns: Any
) -> None:
    # the feed looks rarely: the tab closes while it waits, not in the middle of a query
    async with wired(engine, fake_bus, fake_dns, stream_seconds=60, poll_seconds=60) as gateway:
        account = await gateway.account("ana")
        login = await gateway.http.post(
            "/gateway/dashboard/login", json={"secret": account["secret"]}
        )
        cookie = f"{gateway_api.SESSION_COOKIE}={login.cookies[gateway_api.SESSION_COOKIE]}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # as uvicorn serves it
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/gateway/dashboard/events",
            "raw_path": b"/gateway/dashboard/events",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"gw"), (b"cookie", cookie.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("gw", 80),
        }
        requested, counters_sent, gone = False, asyncio.Event(), asyncio.Event()
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message.get("body", b"").startswith(b"event: stats"):
                counters_sent.set()

        serving = asyncio.create_task(gateway.app(scope, receive, send))
        await asyncio.wait_for(counters_sent.wait(), 5)
        await asyncio.sleep(0.2)  # the feed's first look is done
        assert sent[0]["status"] == 200
        assert gateway.slots.held(account["id"]) == 1
        gone.set()  # the tab is closed, long before the stream's 60 s lifetime
        await asyncio.wait_for(serving, 5)
        assert gateway.slots.held(account["id"]) == 0


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """``(event name, decoded data)`` of each event of a server-sent event stream."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], orjson.loads(fields["data"])))
    return found


async def test_a_transaction_flows_through_the_broker_to_its_decision(gateway: Gateway) -> None:
    """The whole flow with no server: the relay publishes to the in-memory broker, the
    processor and the result applier consume from it as their worker runs them, and the
    merchant sees the decision."""
    secret = (await gateway.account())["secret"]
    accepted = (await gateway.pay(secret)).json()
    processor = gateway._consumer(*consumers.processor(gateway.keyring))
    applier = gateway._consumer(*consumers.results())
    running = [
        asyncio.create_task(job) for job in (gateway.relay.run(), processor.run(), applier.run())
    ]
    try:
        async with asyncio.timeout(10):
            while True:
                found = await gateway.http.get(
                    f"/gateway/transactions/{accepted['id']}", headers=bearer(secret)
                )
                if found.json()["status"] != "pending":
                    break
                await asyncio.sleep(0.01)
    finally:
        await gateway.bus.stop_consuming()
        await gateway.relay.stop()
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    assert (found.json()["status"], found.json()["error_message"]) == ("approved", "")
    assert [e.topic for e in gateway.bus.published] == [messages.TRANSACTIONS, messages.RESULTS]
