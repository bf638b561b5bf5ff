"""Imports every module that defines tables, so the metadata is complete (Alembic, tests)."""

from paycore.commerce import store as commerce_store
from paycore.fulfillment import store as fulfillment_store
from paycore.gateway import store as gateway_store
from paycore.payments import store as payments_store
from paycore.platform.messaging import consumer, deadletters, outbox
from paycore.platform.web import idempotency

__all__ = [
    "commerce_store",
    "consumer",
    "deadletters",
    "fulfillment_store",
    "gateway_store",
    "idempotency",
    "outbox",
    "payments_store",
]
