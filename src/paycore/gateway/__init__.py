"""The payment gateway (seed 001): merchant accounts, card transactions decided by a processor
worker, signed webhooks, a live dashboard."""

LAYERS = (
    "processes | cli",
    "dashboard",
    "api | consumers",
    "service | webhooks | live | auth | views",
    "store | messages | webhook_targets",
    "crypto | metrics | settings",
    "domain",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""
