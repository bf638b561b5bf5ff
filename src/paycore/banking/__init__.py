"""Banking (seed 002): a double-entry ledger (``ledger``: accounts, balances, single, two-phase
and linked transfers, an append-only hash-chained journal), customers and their accounts,
transfers applied by the ledger worker; cards (``cards``) and their authorizations; Pix BR
Codes (``pix``) and Pix keys; loans (``loans``: repayment plans, their effective cost and
IOF); auto insurance (``insurance``: quotes and refunds)."""

LAYERS = (
    "processes | cli",
    "pix.cli | loans.cli",
    "ledger_api",
    "api | consumers | expiry | cards.api | pix.api",
    "web | views",
    "cards.network | cards.views | pix.views",
    "cards.service | pix.service | pix.payments",
    "service",
    "store | messages | ledger.service | ledger.verify | cards.store | pix.qr | pix.store",
    "ledger.store | insurance.quote | insurance.policy | pix.domain",
    "pix.brcode",
    "pix.emv | pix.keys",
    "domain | settings | metrics | cards.domain | loans.cost | loans.iof",
    "loans.schedule",
    "ledger.domain",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""
PURE = (
    *("pix.emv", "pix.keys", "pix.brcode"),
    *("loans.schedule", "loans.cost", "loans.iof"),
    *("insurance.quote", "insurance.policy"),
)
"""Modules held to the domain's rule though not named ``domain.py``: no framework, no driver."""
