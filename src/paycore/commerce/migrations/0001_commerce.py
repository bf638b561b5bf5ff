"""commerce: customers, products, orders and the analytics read model

Revision ID: commerce_0001
Revises:
Create Date: 2026-12-06

Until paycore's migrations were split by context these tables came from the single chain
0001-0004; a database at ``0001`` or later already has them (``paycore migrate`` stamps it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "commerce_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("commerce",)
depends_on: str | Sequence[str] | None = None
legacy_revision = "0001"  # the revision of the former single chain that created these


def upgrade() -> None:
    op.create_table(
        "commerce_analytics_lines",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("unit_cents", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "order_id", "product", "unit_cents", name=op.f("pk_commerce_analytics_lines")
        ),
    )

    op.create_table(
        "commerce_analytics_orders",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("item_count", sa.BigInteger(), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_commerce_analytics_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_commerce_analytics_orders_order_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("commerce_analytics_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commerce_analytics_orders_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "commerce_consumed_messages",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_commerce_consumed_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_commerce_consumed_messages_message_id")),
        sqlite_autoincrement=True,
    )

    op.create_table(
        "commerce_customers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commerce_customers")),
        sa.UniqueConstraint("email", name=op.f("uq_commerce_customers_email")),
        sa.UniqueConstraint("username", name=op.f("uq_commerce_customers_username")),
    )

    op.create_table(
        "commerce_products",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commerce_products")),
        sa.UniqueConstraint("name", name=op.f("uq_commerce_products_name")),
    )

    op.create_table(
        "commerce_orders",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["commerce_customers.id"],
            name=op.f("fk_commerce_orders_customer_id_commerce_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commerce_orders")),
    )
    with op.batch_alter_table("commerce_orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_commerce_orders_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "commerce_order_items",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_cents", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["commerce_orders.id"],
            name=op.f("fk_commerce_order_items_order_id_commerce_orders"),
        ),
        sa.PrimaryKeyConstraint("order_id", "product", name=op.f("pk_commerce_order_items")),
    )


def downgrade() -> None:
    op.drop_table("commerce_order_items")
    with op.batch_alter_table("commerce_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commerce_orders_customer_id"))

    op.drop_table("commerce_orders")
    op.drop_table("commerce_products")
    op.drop_table("commerce_customers")
    op.drop_table("commerce_consumed_messages")
    with op.batch_alter_table("commerce_analytics_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_commerce_analytics_orders_customer_id"))

    op.drop_table("commerce_analytics_orders")
    op.drop_table("commerce_analytics_lines")
