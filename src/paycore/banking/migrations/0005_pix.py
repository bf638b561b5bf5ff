"""banking: Pix keys (the DICT), charges, payments and refunds

Revision ID: banking_0005
Revises: banking_0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0005"
down_revision: str | Sequence[str] | None = "banking_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "banking_pix_charges",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("txid", sa.String(length=35), nullable=False),
        sa.Column("kind", sa.String(length=7), nullable=False),
        sa.Column("key", sa.String(length=77), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("location", sa.String(length=32), nullable=True),
        sa.Column("br_code", sa.String(length=512), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_pix_charges_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_pix_charges_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_pix_charges")),
        sa.UniqueConstraint("customer_id", "txid", name=op.f("uq_banking_pix_charges_txid")),
        sa.UniqueConstraint("location", name=op.f("uq_banking_pix_charges_location")),
    )
    op.create_table(
        "banking_pix_keys",
        sa.Column("key", sa.String(length=77), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_pix_keys_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_pix_keys_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_banking_pix_keys")),
    )
    with op.batch_alter_table("banking_pix_keys", schema=None) as batch_op:
        batch_op.create_index("ix_banking_pix_keys_account", ["account_id"], unique=False)
        batch_op.create_index(
            "ix_banking_pix_keys_customer", ["customer_id", "created_at"], unique=False
        )

    op.create_table(
        "banking_pix_payments",
        sa.Column("end_to_end_id", sa.String(length=32), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("payer_customer_id", sa.String(length=36), nullable=False),
        sa.Column("payer_account_id", sa.String(length=36), nullable=False),
        sa.Column("payer_name", sa.String(length=200), nullable=False),
        sa.Column("payee_customer_id", sa.String(length=36), nullable=False),
        sa.Column("payee_account_id", sa.String(length=36), nullable=False),
        sa.Column("payee_name", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=77), nullable=True),
        sa.Column("txid", sa.String(length=35), nullable=True),
        sa.Column("charge_id", sa.String(length=36), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["charge_id"],
            ["banking_pix_charges.id"],
            name=op.f("fk_banking_pix_payments_charge_id_banking_pix_charges"),
        ),
        sa.ForeignKeyConstraint(
            ["payee_account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_pix_payments_payee_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payee_customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_pix_payments_payee_customer_id_banking_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_account_id"],
            ["banking_accounts.id"],
            name=op.f("fk_banking_pix_payments_payer_account_id_banking_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_customer_id"],
            ["banking_customers.id"],
            name=op.f("fk_banking_pix_payments_payer_customer_id_banking_customers"),
        ),
        sa.PrimaryKeyConstraint("end_to_end_id", name=op.f("pk_banking_pix_payments")),
        sa.UniqueConstraint("charge_id", name=op.f("uq_banking_pix_payments_charge_id")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_banking_pix_payments_transfer_id")),
    )
    op.create_table(
        "banking_pix_refunds",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=32), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("transfer_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["end_to_end_id"],
            ["banking_pix_payments.end_to_end_id"],
            name=op.f("fk_banking_pix_refunds_end_to_end_id_banking_pix_payments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_pix_refunds")),
        sa.UniqueConstraint("transfer_id", name=op.f("uq_banking_pix_refunds_transfer_id")),
    )
    with op.batch_alter_table("banking_pix_refunds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_banking_pix_refunds_payment", ["end_to_end_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("banking_pix_refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_pix_refunds_payment")

    op.drop_table("banking_pix_refunds")
    op.drop_table("banking_pix_payments")
    with op.batch_alter_table("banking_pix_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_banking_pix_keys_customer")
        batch_op.drop_index("ix_banking_pix_keys_account")

    op.drop_table("banking_pix_keys")
    op.drop_table("banking_pix_charges")
