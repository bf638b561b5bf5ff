"""The ledger worker's subscription: transfers customers asked for (``banking.transfers``),
applied in batches, each once; what became of each published. One worker at a time applies
them (an exclusive subscription), in the order the broker holds them; the others stand by."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from paycore.banking import messages, metrics, service
from paycore.banking.ledger.cache import Accounts
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import CREATED_AT, Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.persistence.uow import Transaction

GROUP = "banking-ledger"


def ledger(
    *, batch: int = 2000, clock: Callable[[], datetime] = utcnow
) -> tuple[Subscription, BatchHandler]:
    """Apply each batch of requests in one commit (the consumer's unit of work: the entries,
    the rejections and the events together). A request that comes again, whatever its
    message id, is known by its transfer id among the journal's entries and the refusals:
    it changes nothing, so the subscription keeps no inbox (``idempotent``). The accounts
    one batch leaves are known to the next (``ledger.cache``), unless another writer or a
    status change came between them."""
    known = Accounts()

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        now = clock()
        outcome = await service.apply_requests(tx, [d.body for d in deliveries], now, known)
        waited = [_since_accepted(d, now) for d in deliveries]
        tx.after_commit(lambda: _observe(waited))
        return outcome.verdicts

    subscription = Subscription(
        messages.REQUESTS, GROUP, batch=batch, exclusive=True, idempotent=True
    )
    return subscription, handle


def _since_accepted(delivery: Delivery, now: datetime) -> float | None:
    written = delivery.headers.get(CREATED_AT, "")
    return max(0.0, now.timestamp() - int(written) / 1000) if written.isdigit() else None


def _observe(waited: list[float | None]) -> None:
    for seconds in waited:
        if seconds is not None:
            metrics.posting_latency.observe(seconds)
