"""Commerce (seed 000): customers, products and orders (``orders``: the public order API), and
the analytics service (``analytics``: its consumers, rankings, archive and internal API)."""

LAYERS = (
    "processes | cli",
    "orders.processes | analytics.processes",
    "orders.api | analytics.api | analytics.consumers",
    "orders.service | orders.client | analytics.service",
    "orders.store | analytics.store | analytics.archive | analytics.board | messages",
    "orders.metrics | settings",
    "domain",
)
"""How its modules may import one another (``paycore.contexts.import_contracts``): a layer may
use those below it; modules of one layer (``|``) are independent."""
INDEPENDENT = ("orders", "analytics")
"""Sub-packages that must not import each other."""
