"""fulfillment: orders in normalized tables

Revision ID: fulfillment_0001
Revises:
Create Date: 2026-12-06

Until paycore's migrations were split by context these tables came from the single chain
0001-0004; a database at ``0002`` or later already has them (``paycore migrate`` stamps it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "fulfillment_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("fulfillment",)
depends_on: str | Sequence[str] | None = None
legacy_revision = "0002"  # the revision of the former single chain that created these


def upgrade() -> None:
    op.create_table(
        "fulfillment_orders",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_uid", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("track_number", sa.String(length=200), nullable=False),
        sa.Column("entry", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("internal_signature", sa.String(length=500), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("delivery_service", sa.String(length=200), nullable=False),
        sa.Column("shardkey", sa.String(length=200), nullable=False),
        sa.Column("sm_id", sa.BigInteger(), nullable=False),
        sa.Column("date_created", sa.String(length=40), nullable=False),
        sa.Column("oof_shard", sa.String(length=200), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_fulfillment_orders")),
        sa.UniqueConstraint("order_uid", name=op.f("uq_fulfillment_orders_order_uid")),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "fulfillment_deliveries",
        sa.Column("order_uid", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("phone", sa.String(length=500), nullable=False),
        sa.Column("zip", sa.String(length=500), nullable=False),
        sa.Column("city", sa.String(length=500), nullable=False),
        sa.Column("address", sa.String(length=500), nullable=False),
        sa.Column("region", sa.String(length=500), nullable=False),
        sa.Column("email", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_uid"],
            ["fulfillment_orders.order_uid"],
            name=op.f("fk_fulfillment_deliveries_order_uid_fulfillment_orders"),
        ),
        sa.PrimaryKeyConstraint("order_uid", name=op.f("pk_fulfillment_deliveries")),
    )

    op.create_table(
        "fulfillment_items",
        sa.Column("order_uid", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("chrt_id", sa.BigInteger(), nullable=False),
        sa.Column("track_number", sa.String(length=500), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("rid", sa.String(length=500), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("sale", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.String(length=500), nullable=False),
        sa.Column("total_price", sa.BigInteger(), nullable=False),
        sa.Column("nm_id", sa.BigInteger(), nullable=False),
        sa.Column("brand", sa.String(length=500), nullable=False),
        sa.Column("status", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_uid"],
            ["fulfillment_orders.order_uid"],
            name=op.f("fk_fulfillment_items_order_uid_fulfillment_orders"),
        ),
        sa.PrimaryKeyConstraint("order_uid", "position", name=op.f("pk_fulfillment_items")),
    )

    op.create_table(
        "fulfillment_payments",
        sa.Column("order_uid", sa.String(length=64), nullable=False),
        sa.Column("transaction", sa.String(length=200), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payment_dt", sa.BigInteger(), nullable=False),
        sa.Column("bank", sa.String(length=200), nullable=False),
        sa.Column("delivery_cost", sa.BigInteger(), nullable=False),
        sa.Column("goods_total", sa.BigInteger(), nullable=False),
        sa.Column("custom_fee", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_uid"],
            ["fulfillment_orders.order_uid"],
            name=op.f("fk_fulfillment_payments_order_uid_fulfillment_orders"),
        ),
        sa.PrimaryKeyConstraint("order_uid", name=op.f("pk_fulfillment_payments")),
    )


def downgrade() -> None:
    op.drop_table("fulfillment_payments")
    op.drop_table("fulfillment_items")
    op.drop_table("fulfillment_deliveries")
    op.drop_table("fulfillment_orders")
