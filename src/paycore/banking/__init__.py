"""Banking (seed 002): a double-entry ledger (``ledger``: accounts, balances, single, two-phase
and linked transfers, an append-only hash-chained journal), customers and their accounts,
transfers applied by the ledger worker; cards (``cards``) and their authorizations; auto
insurance (``insurance``): quotes and refunds, rules only so far."""

LAYERS = (
    "processes | cli",
    "ledger_api",
    "api | consumers | expiry | cards.api",
    "web | views",
    "cards.network | cards.views",
    "cards.service",
    "service",
    "store | messages | ledger.service | ledger.verify | cards.store",
    "ledger.store | insurance.quote | insurance.policy",
    "domain | settings | metrics | cards.domain",
    "ledger.domain",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""

PURE = ("insurance.quote", "insurance.policy")
"""Modules besides ``domain.py`` that hold rules only: they import no frameworks either."""
