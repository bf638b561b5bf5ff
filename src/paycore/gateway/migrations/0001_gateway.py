"""gateway: accounts, transactions, decisions, webhook deliveries

Revision ID: gateway_0001
Revises:
Create Date: 2026-12-06

Until paycore's migrations were split by context these tables came from the single chain
0001-0004; a database at ``0004`` or later already has them (``paycore migrate`` stamps it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("gateway",)
depends_on: str | Sequence[str] | None = None
legacy_revision = "0004"  # the revision of the former single chain that created these


def upgrade() -> None:
    op.create_table(
        "gateway_accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("secret_hint", sa.String(length=16), nullable=False),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_accounts")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_gateway_accounts_secret_hash")),
    )

    op.create_table(
        "gateway_decisions",
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error_message", sa.String(length=200), nullable=False),
        sa.Column("brand", sa.String(length=20), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_gateway_decisions")),
    )

    op.create_table(
        "gateway_webhook_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("transaction_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_webhook_deliveries")),
        sa.UniqueConstraint(
            "transaction_id", name=op.f("uq_gateway_webhook_deliveries_transaction_id")
        ),
    )
    with op.batch_alter_table("gateway_webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_webhook_deliveries_account", ["account_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_gateway_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "gateway_transactions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("brand", sa.String(length=20), nullable=True),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.SmallInteger(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error_message", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["gateway_accounts.id"],
            name=op.f("fk_gateway_transactions_account_id_gateway_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_transactions")),
    )
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gateway_transactions_account_id", ["account_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_gateway_transactions_account_status", ["account_id", "status", "id"], unique=False
        )
        batch_op.create_index(
            "ix_gateway_transactions_account_updated", ["account_id", "updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_transactions_account_id")
        batch_op.drop_index("ix_gateway_transactions_account_status")
        batch_op.drop_index("ix_gateway_transactions_account_updated")

    op.drop_table("gateway_transactions")
    with op.batch_alter_table("gateway_webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_gateway_webhook_deliveries_account")
        batch_op.drop_index("ix_gateway_webhook_deliveries_due")

    op.drop_table("gateway_webhook_deliveries")
    op.drop_table("gateway_decisions")
    op.drop_table("gateway_accounts")
