"""Banking (seed 002): a double-entry ledger (``ledger``: accounts, balances, single, two-phase
and linked transfers, an append-only hash-chained journal), customers and their accounts,
transfers applied by the ledger worker; cards (``cards``) and their authorizations; Pix BR
Codes (``pix``) and Pix keys; loans (``loans``: repayment plans, their effective cost and
IOF; applications decided and paid out by the worker, instalments paid on request and on
their due dates); auto insurance (``insurance``: quotes, cached for as long as they hold, and
policies issued by the banking worker, their premiums charged and refunded through the
ledger)."""

LAYERS = (
    "processes | cli",
    "pix.cli | loans.cli | loans.worker",
    "ledger_api",
    "api | consumers | expiry | cards.api | insurance.api | insurance.consumers"
    " | loans.api | loans.consumers | loans.collector | pix.api",
    "web | views",
    "cards.network | cards.views | insurance.views | loans.views | loans.underwriting | pix.views",
    "cards.service | insurance.service | loans.service | pix.service | pix.payments",
    "loans.repayment",
    "service | insurance.cache",
    "store | messages | ledger.service | ledger.verify | cards.store | pix.qr | insurance.store"
    " | pix.store",
    "loans.store | loans.messages",
    "ledger.store | insurance.quote | insurance.policy | insurance.messages | pix.domain",
    "pix.brcode",
    "pix.emv | pix.keys | loans.simulation",
    "domain | settings | metrics | cards.domain | loans.cost | loans.iof | loans.domain",
    "loans.schedule",
    "ledger.domain",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""
PURE = (
    *("pix.emv", "pix.keys", "pix.brcode"),
    *("loans.schedule", "loans.cost", "loans.iof", "loans.simulation"),
    *("insurance.quote", "insurance.policy"),
)
"""Modules held to the domain's rule though not named ``domain.py``: no framework, no driver."""
