"""Banking (seed 002): a double-entry ledger (``ledger``: accounts, balances, single, two-phase
and linked transfers, an append-only hash-chained journal), customers and their accounts,
transfers applied by the ledger worker; cards (``cards``) and their authorizations; Pix BR
Codes (``pix``) and Pix keys."""

LAYERS = (
    "processes | cli",
    "pix.cli",
    "ledger_api",
    "api | consumers | expiry | cards.api",
    "web | views",
    "cards.network | cards.views",
    "cards.service",
    "service",
    "store | messages | ledger.service | ledger.verify | cards.store | pix.qr",
    "ledger.store",
    "pix.brcode",
    "pix.emv | pix.keys",
    "domain | settings | metrics | cards.domain",
    "ledger.domain",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""
PURE = ("pix.emv", "pix.keys", "pix.brcode")
"""Modules held to the domain's rule though not named ``domain.py``: standard library only."""
