"""Fulfillment (seed 003): marketplace orders ingested from a topic, cached, looked up by id."""

LAYERS = (
    "processes | cli",
    "api | consumers",
    "service | generator",
    "messages",
    "store",
    "domain | settings",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``)."""
