"""The ledger worker's subscription: transfers customers asked for (``banking.transfers``),
applied in batches, each once; what became of each published. One worker at a time applies
them (an exclusive subscription), in the order the broker holds them; the others stand by."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from paycore.banking import messages, metrics, service
from paycore.banking.ledger.cache import Accounts
from paycore.banking.posted import Publisher
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import CREATED_AT, Delivery, Subscription
from paycore.platform.messaging.consumer import Verdicts
from paycore.platform.persistence.uow import Database, Transaction

GROUP = "banking-ledger"


def ledger(
    db: Database,
    *,
    batch: int = 2000,
    clock: Callable[[], datetime] = utcnow,
    posted: Publisher | None = None,
) -> tuple[Subscription, Ledger]:
    """Apply each batch of requests in one commit (the consumer's unit of work: the entries,
    the rejections and their events together). A request that comes again, whatever its
    message id, is known by its transfer id among the journal's entries and the refusals:
    it changes nothing, so the subscription keeps no inbox (``idempotent``). The accounts
    one batch leaves are known to the next (``ledger.cache``), unless another writer or a
    status change came between them; and the next batch is applied to them ahead of its
    turn, while the one before is being written (``overlap``, ``Ledger.early``). A batch's
    entries are handed to the ``posted`` events' publisher once they commit."""
    subscription = Subscription(
        messages.REQUESTS, GROUP, batch=batch, exclusive=True, idempotent=True, overlap=True
    )
    return subscription, Ledger(db, clock, posted)


class Ledger:
    """The ledger worker's batch handler (an ``EarlyHandler``)."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime] = utcnow,
        posted: Publisher | None = None,
    ) -> None:
        self.known = Accounts()
        self._db = db
        self._clock = clock
        self._posted = posted
        self._ahead: service.Ahead | None = None

    async def early(self, deliveries: Sequence[Delivery]) -> None:
        """Once the batch before has been applied (not yet written), decode these requests
        and apply them to the accounts it leaves (reading, as committed, those it does not
        keep); their turn checks that it all still holds."""
        await self.known.wait_applied()
        bodies = [d.body for d in deliveries]
        self._ahead = await service.ahead_of_turn(bodies, self._clock(), self.known, self._db)

    async def __call__(self, tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        self.known.begin()
        ahead, self._ahead = self._ahead, None
        now = self._clock()
        bodies = [d.body for d in deliveries]
        outcome = await service.apply_requests(tx, bodies, now, self.known, ahead)
        if self._posted is not None:
            posted = self._posted
            tx.after_commit(lambda: posted.handoff(outcome.entries))
        waited = [_since_accepted(d, now) for d in deliveries]
        tx.after_commit(lambda: _observe(waited))
        return outcome.verdicts


def _since_accepted(delivery: Delivery, now: datetime) -> float | None:
    written = delivery.headers.get(CREATED_AT, "")
    return max(0.0, now.timestamp() - int(written) / 1000) if written.isdigit() else None


def _observe(waited: list[float | None]) -> None:
    for seconds in waited:
        if seconds is not None:
            metrics.posting_latency.observe(seconds)
