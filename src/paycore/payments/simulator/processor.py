"""Payment processor simulator compatible with the Rinha de Backend 2025 processors.

A raw ASGI app (no framework: it runs next to the system under test during benchmarks, so
every request must be cheap) with the processor's public and admin API. One
:class:`ProcessorState` is one processor; :mod:`paycore.payments.simulator.pair` serves the
default and the fallback one in a single process.

Rules of ``POST /payments``, in order:

1. more than ``max_in_flight`` payment requests at once: 429 at once (``Retry-After: 1``);
2. a bad body: 400 at once, nothing stored (a request that cannot be read is never processed);
3. the configured delay (read when the request arrives) runs;
4. failure mode on (read after the delay): 500 and nothing stored, even for an id already
   stored: a failing processor answers 500 to every payment, it never reaches its database;
5. the correlationId already stored: 422;
6. stored, 200. Steps 5 and 6 run without an ``await`` in between, so two concurrent
   requests with the same id store it once.

Money is integer cents inside. The admin summary's ``totalFee`` is ``totalAmount ×
feePerTransaction`` computed exactly and not rounded (``19.90 × 0.05`` is ``0.995``), as the
official processor reports it; ``totalAmount`` always has two decimals.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any
from urllib.parse import parse_qs

import orjson

from paycore.platform.money import MoneyError, json_number, to_cents

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

DEFAULT_TOKEN = "123"  # noqa: S105 - the public default of the official processors
DEFAULT_MAX_IN_FLIGHT = 2000
HEALTH_WINDOW_SECONDS = 5.0
MAX_BODY_BYTES = 64 * 1024
MAX_AMOUNT = Decimal("1000000000000.00")  # far above any test, small enough to stay cheap
MAX_DELAY_MS = 600_000
MAX_FEE_PLACES = 6

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OK = orjson.dumps({"message": "payment processed successfully"})


class BadRequestError(ValueError):
    """A request the processor refuses with 400; the message says why."""


@dataclass(frozen=True)
class Summary:
    """Payments whose ``requestedAt`` falls in a window, and what the processor charged."""

    total_requests: int
    total_cents: int
    fee: Decimal

    def to_json(self) -> bytes:
        """The admin summary body, every number exact (no float on the way)."""
        with localcontext() as ctx:
            ctx.prec = 80  # cents times a fee of at most MAX_FEE_PLACES places: exact
            total_fee = _plain(Decimal(self.total_cents).scaleb(-2) * self.fee, places=2)
            fee = _plain(self.fee, places=0)
        return orjson.dumps(
            {
                "totalRequests": self.total_requests,
                "totalAmount": json_number(self.total_cents),
                "totalFee": orjson.Fragment(total_fee.encode()),
                "feePerTransaction": orjson.Fragment(fee.encode()),
            }
        )


def _plain(value: Decimal, places: int) -> str:
    """Fixed-point text of a finite ``value``: every significant decimal, at least ``places``."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return f"{value:.{max(places, -exponent)}f}"


class ProcessorState:
    """One processor: its configuration and the payments it stored."""

    def __init__(
        self,
        fee: Decimal,
        *,
        token: str = DEFAULT_TOKEN,
        delay_ms: int = 0,
        failing: bool = False,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        health_window: float = HEALTH_WINDOW_SECONDS,
    ) -> None:
        self.fee = check_fee(fee)
        if not token:
            raise ValueError("the admin token must not be empty")
        if max_in_flight < 1:
            raise ValueError(f"max in flight must be at least 1, got {max_in_flight}")
        self.token = token
        self.delay_ms = delay_ms
        self.failing = failing
        self.max_in_flight = max_in_flight
        self.health_window = health_window
        self.payments: dict[str, tuple[int, int]] = {}  # correlationId -> (requestedAt µs, cents)
        # requestedAt (µs since the epoch) sorted, and the amounts in the same order
        self._times: list[int] = []
        self._cents: list[int] = []
        self._last_health = -math.inf

    def store(self, correlation_id: str, requested_at_us: int, cents: int) -> bool:
        """Store a payment; False (and nothing changed) if that id is already stored."""
        if correlation_id in self.payments:
            return False
        self.payments[correlation_id] = (requested_at_us, cents)
        # Payments arrive almost in requestedAt order, so this inserts near the end.
        at = bisect_right(self._times, requested_at_us)
        self._times.insert(at, requested_at_us)
        self._cents.insert(at, cents)
        return True

    def summary(self, start_us: int | None = None, end_us: int | None = None) -> Summary:
        """Payments with ``start_us <= requestedAt <= end_us`` (a missing bound is open)."""
        low = 0 if start_us is None else bisect_left(self._times, start_us)
        high = len(self._times) if end_us is None else bisect_right(self._times, end_us)
        if high <= low:
            return Summary(0, 0, self.fee)
        return Summary(high - low, sum(self._cents[low:high]), self.fee)

    def purge(self) -> None:
        """Forget every stored payment."""
        self.payments.clear()
        self._times.clear()
        self._cents.clear()

    def take_health_slot(self, now: float) -> float:
        """0 if a health check may be answered now (and the slot is taken), else the seconds
        until the next one may."""
        wait = self._last_health + self.health_window - now
        if wait > 0:
            return wait
        self._last_health = now
        return 0.0


def check_fee(fee: Decimal) -> Decimal:
    """``fee`` if it is a fraction in [0, 1) with at most six decimals, else ValueError."""
    if not fee.is_finite() or not 0 <= fee < 1:
        raise ValueError(f"a fee must be a decimal in [0, 1), got {fee}")
    if fee != fee.quantize(Decimal(1).scaleb(-MAX_FEE_PLACES)):
        raise ValueError(f"a fee may have at most {MAX_FEE_PLACES} decimals, got {fee}")
    return fee


def parse_fee(text: str) -> Decimal:
    """Parse a fee given as text (e.g. ``"0.05"``); ValueError with the reason."""
    try:
        return check_fee(Decimal(text.strip()))
    except InvalidOperation:
        raise ValueError(f"a fee must be a decimal in [0, 1), got {text!r}") from None


# --------------------------------------------------------------------------- request parsing


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(body: bytes) -> dict[str, Any]:
    """A JSON object; numbers with a fraction become Decimal (exact money, never float).

    The stdlib parser is used on purpose: orjson only yields floats, which would accept
    ``19.900000000000001`` as 19.90. Writing JSON goes through orjson.
    """
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, huge integers
        raise BadRequestError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data


def parse_instant(text: object, field: str) -> int:
    """An ISO 8601 timestamp as microseconds since the epoch (no offset means UTC)."""
    if not isinstance(text, str):
        raise BadRequestError(f"{field} must be an ISO 8601 timestamp string")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequestError(f"{field} is not an ISO 8601 timestamp: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def parse_payment(body: bytes) -> tuple[str, int, int]:
    """``(correlationId, requestedAt µs, amount cents)`` of a payment body, or BadRequestError."""
    data = _load_json(body)
    missing = [k for k in ("correlationId", "amount", "requestedAt") if k not in data]
    if missing:
        raise BadRequestError(f"missing field(s): {', '.join(missing)}")
    raw_id = data["correlationId"]
    try:
        correlation_id = str(uuid.UUID(raw_id))
    except (TypeError, ValueError, AttributeError):
        raise BadRequestError("correlationId must be a UUID") from None
    amount = data["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise BadRequestError("amount must be a number")
    # compared before any arithmetic: comparisons are exact, 1e999999999 * 100 overflows
    if not 0 < amount <= MAX_AMOUNT:
        raise BadRequestError(f"amount must be positive and at most {MAX_AMOUNT}")
    try:
        cents = to_cents(amount)
    except MoneyError as exc:
        raise BadRequestError(f"amount: {exc}") from None
    return correlation_id, parse_instant(data["requestedAt"], "requestedAt"), cents


def _query_instant(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or not values[0]:
        return None
    text = values[0]
    if " " in text and "T" in text:  # an unencoded "+01:00" offset arrives as " 01:00"
        text = "+".join(text.rsplit(" ", 1))
    return parse_instant(text, name)


def _admin_value(body: bytes, name: str, shape: str) -> object:
    """The one field of an admin body, or BadRequestError showing the expected ``shape``."""
    data = _load_json(body)
    if name not in data:
        raise BadRequestError(f'the body must be {{"{name}": {shape}}}')
    return data[name]


# --------------------------------------------------------------------------- the ASGI app

Response = tuple[int, bytes, Headers]
Handler = Callable[[Scope, bytes], Awaitable[Response]]


def _message(status: int, text: str, headers: Headers | None = None) -> Response:
    return status, orjson.dumps({"message": text}), headers or []


class PaymentProcessorApp:
    """The ASGI app of one processor (``state`` holds everything it knows)."""

    def __init__(self, state: ProcessorState) -> None:
        self.state = state
        self.in_flight = 0
        self._routes: dict[str, dict[str, tuple[Handler, bool]]] = {
            "/payments": {"POST": (self._pay, False)},
            "/payments/service-health": {"GET": (self._health, False)},
            "/admin/payments-summary": {"GET": (self._summary, True)},
            "/admin/configurations/token": {"PUT": (self._set_token, True)},
            "/admin/configurations/delay": {"PUT": (self._set_delay, True)},
            "/admin/configurations/failure": {"PUT": (self._set_failure, True)},
            "/admin/purge-payments": {"POST": (self._purge, True)},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/payments" and scope["method"] == "POST":
            # the hot path skips the routing, and its in-flight limit covers the body read too
            await self._respond(send, await self._pay_guarded(scope, receive))
            return
        await self._respond(send, await self._dispatch(scope, receive))

    async def _dispatch(self, scope: Scope, receive: Receive) -> Response:
        methods = self._routes.get(scope["path"])
        if methods is None:
            return _message(404, f"no route {scope['path']}")
        route = methods.get(scope["method"])
        if route is None:
            allow = ", ".join(methods).encode()
            return _message(405, f"use {', '.join(methods)}", [(b"allow", allow)])
        handler, admin = route
        if admin and not self._authorized(scope):
            return _message(401, "missing or wrong X-Rinha-Token header")
        try:
            return await handler(scope, await _read_body(receive))
        except BadRequestError as exc:
            return _message(400, str(exc))

    async def _pay_guarded(self, scope: Scope, receive: Receive) -> Response:
        if self.in_flight >= self.state.max_in_flight:
            return _message(429, "too many payments in flight", [(b"retry-after", b"1")])
        self.in_flight += 1
        try:
            return await self._pay(scope, await _read_body(receive))
        except BadRequestError as exc:
            return _message(400, str(exc))
        finally:
            self.in_flight -= 1

    def _authorized(self, scope: Scope) -> bool:
        expected = self.state.token.encode()
        for name, value in scope["headers"]:
            if name == b"x-rinha-token":
                return secrets.compare_digest(value, expected)
        return False

    async def _pay(self, scope: Scope, body: bytes) -> Response:
        correlation_id, requested_at, cents = parse_payment(body)
        if self.state.delay_ms:
            await asyncio.sleep(self.state.delay_ms / 1000)
        if self.state.failing:
            return _message(500, "payment processor failure")
        if not self.state.store(correlation_id, requested_at, cents):
            return _message(422, "correlationId already processed")
        return 200, _OK, []

    async def _health(self, scope: Scope, body: bytes) -> Response:
        wait = self.state.take_health_slot(time.monotonic())
        if wait:
            retry = str(max(1, math.ceil(wait))).encode()
            return _message(429, "at most one health check per window", [(b"retry-after", retry)])
        health = {"failing": self.state.failing, "minResponseTime": self.state.delay_ms}
        return 200, orjson.dumps(health), []

    async def _summary(self, scope: Scope, body: bytes) -> Response:
        query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        start, end = _query_instant(query, "from"), _query_instant(query, "to")
        return 200, self.state.summary(start, end).to_json(), []

    async def _set_token(self, scope: Scope, body: bytes) -> Response:
        token = _admin_value(body, "token", '"<non-empty string>"')
        if not isinstance(token, str) or not token:
            raise BadRequestError('the body must be {"token": "<non-empty string>"}')
        self.state.token = token
        return _message(200, "token updated")

    async def _set_delay(self, scope: Scope, body: bytes) -> Response:
        shape = f"<whole milliseconds in [0, {MAX_DELAY_MS}]>"
        delay = _admin_value(body, "delay", shape)
        # range first: comparisons are exact, int() of a huge exponent is not cheap
        if (
            isinstance(delay, bool)
            or not isinstance(delay, int | Decimal)
            or not 0 <= delay <= MAX_DELAY_MS
            or int(delay) != delay
        ):
            raise BadRequestError(f'the body must be {{"delay": {shape}}}')
        self.state.delay_ms = int(delay)
        return _message(200, f"delay set to {self.state.delay_ms} ms")

    async def _set_failure(self, scope: Scope, body: bytes) -> Response:
        failure = _admin_value(body, "failure", "true|false")
        if not isinstance(failure, bool):
            raise BadRequestError('the body must be {"failure": true|false}')
        self.state.failing = failure
        return _message(200, f"failure set to {str(failure).lower()}")

    async def _purge(self, scope: Scope, body: bytes) -> Response:
        self.state.purge()
        return _message(200, "all payments purged")

    @staticmethod
    async def _respond(send: Send, response: Response) -> None:
        status, body, extra = response
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequestError(f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
