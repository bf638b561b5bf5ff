"""The banking worker's subscription to loan applications (``banking.loan.applications``):
each batch decided in the consumer's unit of work (the inbox, the decisions, the
disbursements and their events in one commit). A message that is no application, or names
one nobody submitted, is refused: a dead letter with the reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from paycore.banking.loans import messages
from paycore.banking.loans.domain import BankAccounts, Policy
from paycore.banking.loans.underwriting import decide_applications
from paycore.platform.clock import utcnow
from paycore.platform.messaging.bus import Delivery, Subscription
from paycore.platform.messaging.consumer import BatchHandler, Verdicts
from paycore.platform.messaging.decoding import decode_each
from paycore.platform.persistence.uow import Transaction

GROUP = "banking-loans"


def applications(
    *,
    policy: Policy,
    bank: BankAccounts,
    batch: int = 100,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[Subscription, BatchHandler]:
    """Decide each batch of at most ``batch`` applications in one commit."""

    async def handle(tx: Transaction, deliveries: Sequence[Delivery]) -> Verdicts:
        decoded = decode_each(
            [d.body for d in deliveries], messages.decode_application, own=messages.BadMessage
        )
        verdicts = decoded.verdicts
        found = await decide_applications(
            tx, [i for _, i in decoded.values], policy=policy, bank=bank, now=clock()
        )
        for (index, _), verdict in zip(decoded.values, found, strict=True):
            verdicts[index] = verdict
        return verdicts

    return Subscription(messages.APPLICATIONS, GROUP, batch=batch), handle
