"""banking: loans (applications, loans paid out and their instalments)

Revision ID: banking_0004
Revises: banking_0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0004"
down_revision: str | Sequence[str] | None = "banking_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "banking_loan_applications",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=8), nullable=False),
        sa.Column("monthly_rate", sa.String(length=40), nullable=False),
        sa.Column("monthly_income", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_loan_applications_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_loan_applications_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_loan_applications")),
    )
    with op.batch_alter_table("banking_loan_applications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_loan_applications_customer", ["customer_id", "submitted_at"], unique=False
        )

    op.create_table(
        "banking_loans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("system", sa.String(length=8), nullable=False),
        sa.Column("principal", sa.BigInteger(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("monthly_rate", sa.String(length=40), nullable=False),
        sa.Column("iof", sa.BigInteger(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outstanding", sa.BigInteger(), nullable=False),
        sa.Column("next_installment", sa.Integer(), nullable=False),
        sa.Column("disbursed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_loans_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_loans_customer_id_banking_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["id"],
            ["banking_loan_applications.id"],
            name=op.f("fk_banking_loans_id_banking_loan_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_loans")),
    )
    with op.batch_alter_table("banking_loans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_loans_customer", ["customer_id", "disbursed_at"], unique=False
        )
        batch_op.create_index("ix_banking_loans_status", ["status", "id"], unique=False)

    op.create_table(
        "banking_loan_installments",
        sa.Column("loan_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("payment", sa.BigInteger(), nullable=False),
        sa.Column("interest", sa.BigInteger(), nullable=False),
        sa.Column("amortization", sa.BigInteger(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("paid_principal", sa.BigInteger(), nullable=True),
        sa.Column("paid_interest", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_by", sa.String(length=8), nullable=True),
        sa.Column("failure", sa.String(length=48), nullable=True),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["banking_loans.id"],
            name=op.f("fk_banking_loan_installments_loan_id_banking_loans"),
        ),
        sa.PrimaryKeyConstraint("loan_id", "number", name=op.f("pk_banking_loan_installments")),
    )


def downgrade() -> None:
    op.drop_table("banking_loan_installments")
    with op.batch_alter_table("banking_loans", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_loans_status")
        batch_op.drop_index("ix_banking_loans_customer")

    op.drop_table("banking_loans")
    with op.batch_alter_table("banking_loan_applications", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_loan_applications_customer")

    op.drop_table("banking_loan_applications")
