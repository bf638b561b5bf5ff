"""Business metrics of the order API."""

from __future__ import annotations

from prometheus_client import Counter

orders_placed = Counter("paycore_commerce_orders_placed_total", "Orders placed (committed)")
order_value = Counter("paycore_commerce_order_value_cents_total", "Value of orders placed, cents")
