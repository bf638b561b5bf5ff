"""banking: auto insurance, its quotes and the policies bought with them

Revision ID: banking_0003
Revises: banking_0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0003"
down_revision: str | Sequence[str] | None = "banking_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "banking_insurance_quotes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("insured_name", sa.String(length=120), nullable=False),
        sa.Column("insured_cpf", sa.String(length=11), nullable=False),
        sa.Column("vehicle_brand", sa.String(length=120), nullable=False),
        sa.Column("vehicle_model", sa.String(length=120), nullable=False),
        sa.Column("vehicle_year", sa.Integer(), nullable=False),
        sa.Column("vehicle_plate", sa.String(length=7), nullable=False),
        sa.Column("insured_amount", sa.BigInteger(), nullable=False),
        sa.Column("deductible", sa.BigInteger(), nullable=False),
        sa.Column("premium_collision", sa.BigInteger(), nullable=True),
        sa.Column("premium_theft", sa.BigInteger(), nullable=True),
        sa.Column("premium_fire", sa.BigInteger(), nullable=True),
        sa.Column("premium_third_party", sa.BigInteger(), nullable=True),
        sa.Column("premium_glass", sa.BigInteger(), nullable=True),
        sa.Column("premium_roadside", sa.BigInteger(), nullable=True),
        sa.Column("base", sa.BigInteger(), nullable=False),
        sa.Column("deductible_discount", sa.BigInteger(), nullable=False),
        sa.Column("net_base", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=False),
        sa.Column("quoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_insurance_quotes_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_insurance_quotes")),
    )
    with op.batch_alter_table("banking_insurance_quotes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_insurance_quotes_customer", ["customer_id", "quoted_at"], unique=False
        )

    op.create_table(
        "banking_insurance_policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("quote_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("premium", sa.BigInteger(), nullable=False),
        sa.Column("payment_method", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("charge_id", sa.String(length=36), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("refund", sa.BigInteger(), nullable=True),
        sa.Column("refund_id", sa.String(length=36), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_insurance_policies_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_insurance_policies_customer_id_banking_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["quote_id"],
            ["banking_insurance_quotes.id"],
            name=op.f("fk_banking_insurance_policies_quote_id_banking_insurance_quotes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_insurance_policies")),
        sa.UniqueConstraint("quote_id", name=op.f("uq_banking_insurance_policies_quote_id")),
    )
    with op.batch_alter_table("banking_insurance_policies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_insurance_policies_customer",
            ["customer_id", "requested_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("banking_insurance_policies", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_insurance_policies_customer")

    op.drop_table("banking_insurance_policies")
    with op.batch_alter_table("banking_insurance_quotes", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_insurance_quotes_customer")

    op.drop_table("banking_insurance_quotes")
