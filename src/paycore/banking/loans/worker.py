"""The loans' part of the banking worker: the consumer deciding applications and the loop
collecting instalments on their due dates, with the bank's rule and poll from
``BankingSettings``."""

from __future__ import annotations

from paycore.banking.loans import consumers
from paycore.banking.loans.collector import Collector
from paycore.banking.loans.domain import Policy
from paycore.banking.loans.service import bank_accounts
from paycore.banking.settings import BankingSettings
from paycore.platform.runtime import Runtime, consume


def policy(settings: BankingSettings) -> Policy:
    """The lending rule the settings set."""
    return Policy(
        max_income_share=settings.loans_max_income_share,
        min_principal=settings.loans_min_principal_cents,
        max_principal=settings.loans_max_principal_cents,
        min_term=settings.loans_min_term,
        max_term=settings.loans_max_term,
        max_open=settings.loans_max_open,
    )


def start(runtime: Runtime, settings: BankingSettings, bank: dict[str, str]) -> None:
    """Consume applications and spawn the collection (``bank``: the bank's accounts by
    name)."""
    accounts = bank_accounts(bank)
    rule = policy(settings)
    consume(
        runtime,
        *consumers.applications(policy=rule, bank=accounts, batch=settings.loans_batch),
    )
    collector = Collector(runtime.db, accounts, poll_seconds=settings.loans_poll_ms / 1000)
    runtime.spawn("banking-loans-collection", collector.run)
