"""Banking in a process: the customers', the operator's and the card network's API (API
process); the ledger worker applying requested transfers and releasing expired holds, and
issuing the insurance policies asked for, deciding loan applications and collecting their
instalments, and publishing the journal's posted events (worker process)."""

from __future__ import annotations

from fastapi import FastAPI

from paycore.banking import api, consumers, ledger_api, service
from paycore.banking.cards import api as cards_api
from paycore.banking.cards.service import CARD_BANK_ACCOUNTS
from paycore.banking.expiry import Expiry
from paycore.banking.insurance import api as insurance_api
from paycore.banking.insurance import consumers as insurance_consumers
from paycore.banking.insurance.service import INSURANCE_BANK_ACCOUNTS, PREMIUMS
from paycore.banking.ledger.service import ensure_bank_accounts
from paycore.banking.loans import api as loans_api
from paycore.banking.loans import worker as loans_worker
from paycore.banking.loans.service import LOAN_BANK_ACCOUNTS
from paycore.banking.pix import api as pix_api
from paycore.banking.posted import Publisher
from paycore.banking.settings import BankingSettings
from paycore.banking.web import BankingApi
from paycore.platform.cards import Hasher
from paycore.platform.clock import utcnow
from paycore.platform.runtime import Processes, Runtime, consume
from paycore.platform.web.fastlane import FastRoute
from paycore.platform.web.routes import mount


async def _bank_accounts(runtime: Runtime) -> dict[str, str]:
    async with runtime.db.transaction() as tx:
        return await ensure_bank_accounts(
            tx,
            (
                *service.BANK_ACCOUNTS,
                *CARD_BANK_ACCOUNTS,
                *INSURANCE_BANK_ACCOUNTS,
                *LOAN_BANK_ACCOUNTS,
            ),
            utcnow(),
        )


async def mount_api(
    app: FastAPI, runtime: Runtime, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    bank = await _bank_accounts(runtime)
    writer = service.request_writer(runtime.db)
    runtime.closers.append(writer.stop)
    app.state.banking = BankingApi(
        db=runtime.db,
        hasher=Hasher(runtime.settings.secret_pepper),
        admin_token=runtime.settings.admin_token,
        cash_id=bank[service.CASH.name],
        requests=writer,
    )
    mount(app, api.routes, prefix, fast_routes)
    mount(app, ledger_api.routes, prefix, fast_routes)
    app.state.banking_cards = cards_api.CardsApi.wired(runtime.db, runtime.settings, bank)
    mount(app, cards_api.routes, prefix, fast_routes)
    app.state.banking_insurance = insurance_api.InsuranceApi.wired(runtime.db, runtime.redis, bank)
    mount(app, insurance_api.routes, prefix, fast_routes)
    app.state.banking_loans = loans_api.LoansApi.wired(runtime.db, bank)
    mount(app, loans_api.routes, prefix, fast_routes)
    app.state.banking_pix = pix_api.PixApi.wired(runtime.db)
    mount(app, pix_api.routes, prefix, fast_routes)


async def start_worker(app: FastAPI, runtime: Runtime) -> None:
    settings = BankingSettings()
    bank = await _bank_accounts(runtime)
    posted = Publisher(runtime.db, runtime.bus, batch=settings.ledger_batch)
    runtime.spawn("banking-posted", posted.run)
    consume(runtime, *consumers.ledger(runtime.db, batch=settings.ledger_batch, posted=posted))
    expiry = Expiry(runtime.db, poll_seconds=settings.expiry_poll_ms / 1000)
    runtime.spawn("banking-expiry", expiry.run)
    premiums = bank[PREMIUMS.name]
    consume(runtime, *insurance_consumers.issuing(premiums, batch=runtime.settings.consumer_batch))
    loans_worker.start(runtime, settings, bank)


PROCESSES = Processes(
    api=mount_api,
    worker=start_worker,
    settings=(BankingSettings,),
    secrets=("secret_pepper", "card_keys"),
)
