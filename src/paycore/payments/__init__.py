"""Payments (seed 004, the Rinha de Backend 2025 contract): payments routed to two external
processors with fallback, and a summary equal to theirs."""

LAYERS = (
    "processes | cli",
    "api | consumers",
    "service",
    "store | messages | processors | simulator",
    "domain | metrics | settings",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""
