"""Test helpers of the payments context: a fake Rinha processor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from paycore.payments.domain import Health, Outcome

Mode = Callable[[str, int], str]  # (correlation id, attempt on this processor) -> behaviour


@dataclass
class FakeProcessor:
    """Stores payments like a Rinha processor; ``mode`` decides each call: "ok", "refuse"
    (500, not stored) or "lost-answer" (stored, but the answer never arrives: a timeout)."""

    name: str
    mode: Mode = lambda cid, attempt: "ok"
    stored: dict[str, tuple[int, int]] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)
    failing: bool = False
    health_calls: int = 0

    async def pay(
        self, correlation_id: str, amount_cents: int, requested_at_ms: int, *, timeout: float
    ) -> tuple[Outcome, int]:
        self.calls.append((correlation_id, requested_at_ms))
        attempt = sum(1 for c, _ in self.calls if c == correlation_id)
        await asyncio.sleep(0)
        behaviour = self.mode(correlation_id, attempt)
        if behaviour == "refuse":
            return Outcome.REFUSED, 1
        if correlation_id in self.stored:
            return Outcome.STORED, 1  # a 422: it holds this payment already
        self.stored[correlation_id] = (requested_at_ms, amount_cents)
        return (Outcome.UNKNOWN if behaviour == "lost-answer" else Outcome.STORED), 1

    async def health(self, *, timeout: float = 2.0) -> Health | None:
        self.health_calls += 1
        return Health(self.failing, 0)

    def totals(self) -> tuple[int, int]:
        return len(self.stored), sum(amount for _, amount in self.stored.values())
