"""The banking worker's insurance subscription: policies asked for
(``banking.insurance.issue``), each issued or rejected once (``service.issue``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from paycore.banking.insurance import messages, service
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.persistence.uow import Transaction

GROUP = "banking-insurance"


def issuing(
    premiums_id: str, *, batch: int = 100, clock: Callable[[], datetime] = utcnow
) -> tuple[Subscription, BatchHandler]:
    """Issue or reject the policies of a batch in one commit (the consumer's unit of work:
    the inbox, the charges, the policies and their events together). A message that does not
    decode, or names no policy asked for, is refused (a dead letter, with the reason)."""

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        now = clock()
        decoded = decode_each(
            [d.body for d in deliveries], messages.decode_issue, own=messages.BadMessage
        )
        for index, message in decoded.values:
            decoded.verdicts[index] = await service.issue(tx, message, premiums_id, now)
        return decoded.verdicts

    return Subscription(messages.ISSUE, GROUP, batch=batch), handle
