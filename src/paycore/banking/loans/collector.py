"""The scheduled collection, run by the banking worker: every poll, each active loan whose
next instalment is due by today (UTC) has it taken from its account (``service.collect``):
paid, or marked overdue with the reason and tried again on the next run until it is paid.
Instalments are taken in order, one per loan per pass; a pass that paid something is followed
at once by another (a loan may have fallen behind by more than one). Each page of loans is
one commit under the ledger's lock; the clock is injectable (tests move the date)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from paycore.banking.ledger.service import LEDGER_LOCK
from paycore.banking.loans import store
from paycore.banking.loans.domain import BankAccounts
from paycore.banking.loans.repayment import collect
from paycore.platform.clock import utcnow
from paycore.platform.persistence.uow import Database

log = logging.getLogger(__name__)

PAGE = 200
"""Loans collected per commit."""


@dataclass(frozen=True, slots=True)
class Collected:
    paid: int  # instalments paid
    short: int  # instalments left overdue (funds short, an account blocked …)


class Collector:
    def __init__(
        self,
        db: Database,
        bank: BankAccounts,
        *,
        poll_seconds: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._bank = bank
        self._poll = poll_seconds
        self._clock = clock

    async def run(self) -> None:
        while True:
            collected = await self.once(self._clock())
            if collected.paid or collected.short:
                log.info(
                    "loan instalments collected",
                    extra={"paid": collected.paid, "short": collected.short},
                )
            await asyncio.sleep(self._poll)

    async def once(self, now: datetime) -> Collected:
        """Collect what is due by ``now``'s date: passes over the loans until one pays
        nothing; ``short`` counts what the last pass left overdue."""
        paid = 0
        while True:
            collected = await self._pass(now)
            paid += collected.paid
            if not collected.paid:
                return Collected(paid, collected.short)

    async def _pass(self, now: datetime) -> Collected:
        """Each loan whose next instalment is due by ``now``'s date: that instalment."""
        today = now.date()
        paid = short = 0
        after: str | None = None
        while True:
            async with self._db.connect() as conn:  # most polls find nothing: no lock for it
                if not await store.due_now(conn, today, after, 1):
                    break
            async with self._db.transaction() as tx:
                await tx.serialize(LEDGER_LOCK)
                page = await store.due_now(tx.conn, today, after, PAGE)
                for due in page:
                    if await collect(tx, due, self._bank, now) is None:
                        paid += 1
                    else:
                        short += 1
            if len(page) < PAGE:
                break
            after = page[-1].id
        return Collected(paid, short)
