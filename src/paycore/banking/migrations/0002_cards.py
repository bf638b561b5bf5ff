"""banking: cards (the number sealed, the CVV as a keyed hash) and their authorizations

Revision ID: banking_0002
Revises: banking_0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0002"
down_revision: str | Sequence[str] | None = "banking_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "banking_cards",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("funding_account_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("number_sealed", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("cvv_hash", sa.String(length=64), nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_cards_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_cards_customer_id_banking_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["funding_account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_cards_funding_account_id_banking_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_cards")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_banking_cards_fingerprint")),
    )
    with op.batch_alter_table("banking_cards", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_cards_customer", ["customer_id", "created_at"], unique=False
        )

    op.create_table(
        "banking_card_authorizations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("card_id", sa.String(length=36), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("merchant", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("outcome", sa.String(length=48), nullable=False),
        sa.Column("hold_id", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["banking_cards.id"],
            name=op.f("fk_banking_card_authorizations_card_id_banking_cards"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_card_authorizations")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_banking_card_authorizations_hold_id")),
    )
    with op.batch_alter_table("banking_card_authorizations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_card_authorizations_card", ["card_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("banking_card_authorizations", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_card_authorizations_card")

    op.drop_table("banking_card_authorizations")
    with op.batch_alter_table("banking_cards", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_cards_customer")

    op.drop_table("banking_cards")
