"""Payments (Rinha de Backend 2025): the payment, the summary window, and the routing rules
that pick a processor. Standard library (and the platform's error base) only.

Consistency is the first rule: a payment is counted for the processor that stored it, at the
``requestedAt`` that was sent to it, once. So a payment is *pinned* to a processor (with its
``requestedAt``) before it is sent; while the outcome of a call is unknown (a timeout) it is
only ever asked of that same processor again, and it is unpinned only when the processor said
it did not store it (a 500 or a 429).
"""

from __future__ import annotations

import enum
import functools
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paycore.platform.errors import DomainError

DEFAULT = "default"
FALLBACK = "fallback"
PROCESSORS = (DEFAULT, FALLBACK)
MIN_TIMEOUT = 6.0  # seconds; the public test's processors delay up to 5 s
MAX_COOLDOWN = 2.0  # seconds a breaker stays open at most before a trial call
MAX_AMOUNT_CENTS = 10**15  # far beyond any payment, well inside a 64-bit column


class InvalidPayment(DomainError):
    """A payment request that cannot be accepted; ``field`` names the value at fault."""

    code = "invalid-payment"
    status = 422

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}", field=field)
        self.field = field


class InvalidWindow(DomainError):
    """A summary window bound that is not an ISO 8601 time (answered as every other query
    value of the wrong form)."""

    code = "validation-error"
    status = 422

    def __init__(self, bound: str, detail: str) -> None:
        error = {"loc": ["query", bound], "msg": detail, "type": "invalid"}
        super().__init__(f"{bound}: {detail}", errors=[error])


@dataclass(frozen=True, slots=True)
class Payment:
    correlation_id: str  # canonical lower-case UUID text
    amount_cents: int


def checked_id(correlation_id: object) -> str:
    """The canonical text of a correlationId, which must be a UUID."""
    if not isinstance(correlation_id, str):
        raise InvalidPayment("correlationId", "must be a UUID string")
    try:
        return str(uuid.UUID(correlation_id))
    except ValueError:
        raise InvalidPayment("correlationId", "must be a UUID") from None


def checked_cents(cents: int) -> int:
    if not 0 < cents <= MAX_AMOUNT_CENTS:
        raise InvalidPayment("amount", "must be greater than 0 and at most 10000000000000")
    return cents


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (UTC, sub-millisecond part dropped): ``requestedAt``'s
    resolution. A naive value is taken as UTC."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.replace(microsecond=0).timestamp()) * 1000 + moment.microsecond // 1000


@functools.lru_cache(maxsize=256)
def requested_at_text(ms: int) -> str:
    """``requestedAt`` as sent to a processor: ISO 8601 UTC with milliseconds. Kept for the
    last few values: the payments of one commit share theirs, and a call is made for each."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_bound(text: str | None, *, upper: bool) -> int | None:
    """A ``from``/``to`` query bound as epoch ms, inclusive. A bound finer than a millisecond
    is rounded inwards (``from`` up, ``to`` down), so the window never grows."""
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidWindow("from" if not upper else "to", "must be an ISO 8601 time") from None
    ms = epoch_ms(moment)
    if not upper and moment.microsecond % 1000:
        ms += 1
    return ms


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int = 0
    amount_cents: int = 0


@dataclass(frozen=True, slots=True)
class Health:
    """A processor's own report (``GET /payments/service-health``)."""

    failing: bool
    min_response_ms: int


class Outcome(enum.Enum):
    """What a processor call tells about the payment."""

    STORED = "stored"  # 200, or 422: it holds this correlationId already
    REFUSED = "refused"  # 500 or 429: it did not store it; safe to send anywhere
    UNKNOWN = "unknown"  # timeout or connection lost mid-call: ask the same processor again


@dataclass(slots=True)
class ProcessorState:
    """What is known of one processor: its own health report, what calls showed, and a
    circuit breaker that opens after repeated failures and lets a trial call through after a
    growing cool-down."""

    name: str
    failing: bool = False
    latency_ms: int = 0
    consecutive_failures: int = 0
    open_until: float = 0.0
    oldest_call_ms: int = 0  # age of the oldest call still waiting for its answer
    trips: int = 0  # openings since the last success: each doubles the cool-down

    def available(self, now: float) -> bool:
        return not self.failing and now >= self.open_until

    @property
    def effective_latency_ms(self) -> int:
        """The known response time, or longer if a call has been waiting longer than that."""
        return max(self.latency_ms, self.oldest_call_ms)

    def on_health(self, failing: bool, min_response_ms: int) -> None:
        self.failing, self.latency_ms = failing, max(0, min_response_ms)

    def on_success(self) -> None:
        self.failing, self.consecutive_failures, self.open_until, self.trips = False, 0, 0.0, 0

    def on_failure(self, now: float, *, threshold: int, cooldown: float) -> None:
        if now < self.open_until:
            return  # a call made before the breaker opened: no news
        self.consecutive_failures += 1
        if self.consecutive_failures >= threshold:
            self.open_until = now + min(cooldown * 2**self.trips, MAX_COOLDOWN)
            self.trips += 1


@dataclass(slots=True)
class Router:
    """Chooses where an unpinned payment goes: the default processor (lower fee) when it is
    available and fast enough, else the fallback when it is, else whichever available one
    answers faster, else nowhere (payments wait). ``slow_ms`` is the response time above which
    a processor is avoided: its answers would land after the summary windows being checked."""

    slow_ms: int = 1500
    breaker_threshold: int = 3
    breaker_cooldown: float = 0.5
    min_timeout: float = MIN_TIMEOUT
    states: dict[str, ProcessorState] = field(
        default_factory=lambda: {name: ProcessorState(name) for name in PROCESSORS}
    )

    def choose(self, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        up = [self.states[name] for name in PROCESSORS if self.states[name].available(now)]
        fast = [s for s in up if s.effective_latency_ms <= self.slow_ms]
        if fast:
            return fast[0].name
        if up:
            return min(up, key=lambda s: s.effective_latency_ms).name
        return None

    def may_ask(self, name: str, now: float | None = None) -> bool:
        """Whether a payment pinned to ``name`` may be asked of it now (its breaker is closed;
        a processor's own 'failing' report does not stop a retry that only confirms storage)."""
        return (time.monotonic() if now is None else now) >= self.states[name].open_until

    def record(
        self, name: str, outcome: Outcome, elapsed_ms: int, now: float | None = None
    ) -> None:
        state = self.states[name]
        state.latency_ms = elapsed_ms  # a slow 500 or a timeout says "slow" as much as a 200
        if outcome is Outcome.STORED:
            state.on_success()
        else:
            state.on_failure(
                time.monotonic() if now is None else now,
                threshold=self.breaker_threshold,
                cooldown=self.breaker_cooldown,
            )

    def timeout_seconds(self, name: str, attempt: int) -> float:
        """How long to wait for a call: past any delay a processor is likely to have (a call
        that times out stays pinned there, unknown, while a late 500 frees the payment), and
        past twice its known response time; longer on each retry of the same payment."""
        base = max(self.min_timeout, self.states[name].latency_ms / 1000 * 2 + 0.5)
        return float(min(base * 2 ** max(0, attempt - 1), 60.0))
