"""banking: the ledger (accounts, balances, the journal), customers, transfer requests and
their refusals

Revision ID: banking_0001
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("banking",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "banking_customers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cpf", sa.String(length=11), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("secret_hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_customers")),
        sa.UniqueConstraint("cpf", name=op.f("uq_banking_customers_cpf")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_banking_customers_secret_hash")),
    )
    op.create_table(
        "banking_rejections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_rejections")),
    )
    op.create_table(
        "banking_accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_limit", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_accounts_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_banking_accounts_name")),
    )
    with op.batch_alter_table("banking_accounts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_accounts_customer", ["customer_id", "created_at"], unique=False
        )

    op.create_table(
        "banking_transfer_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("debit_account_id", sa.String(length=36), nullable=False),
        sa.Column("credit_account_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=140), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_transfer_requests_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_transfer_requests")),
    )
    with op.batch_alter_table("banking_transfer_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_transfer_requests_customer", ["customer_id", "accepted_at"], unique=False
        )

    op.create_table(
        "banking_balances",
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_balances_account_id_banking_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_banking_balances")),
    )
    op.create_table(
        "banking_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("pending_id", sa.String(length=64), nullable=True),
        sa.Column("debit_account_id", sa.String(length=36), nullable=False),
        sa.Column("credit_account_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dr_debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("dr_debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("dr_credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("dr_credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("cr_debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("cr_debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("cr_credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("cr_credits_posted", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_entries_credit_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_entries_debit_account_id_banking_accounts"),
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_banking_entries")),
        sa.UniqueConstraint("id", name=op.f("uq_banking_entries_id")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_banking_entries_pending_id")),
    )
    with op.batch_alter_table("banking_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_entries_credit", ["credit_account_id", "seq"], unique=False
        )
        batch_op.create_index("ix_banking_entries_debit", ["debit_account_id", "seq"], unique=False)
        batch_op.create_index("ix_banking_entries_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("banking_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_entries_expires")
        batch_op.drop_index("ix_banking_entries_debit")
        batch_op.drop_index("ix_banking_entries_credit")

    op.drop_table("banking_entries")
    op.drop_table("banking_balances")
    with op.batch_alter_table("banking_transfer_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_transfer_requests_customer")

    op.drop_table("banking_transfer_requests")
    with op.batch_alter_table("banking_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_accounts_customer")

    op.drop_table("banking_accounts")
    op.drop_table("banking_rejections")
    op.drop_table("banking_customers")
