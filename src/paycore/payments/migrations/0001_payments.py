"""payments: payments and the dispatcher's lease

Revision ID: payments_0001
Revises:
Create Date: 2026-12-06

Until paycore's migrations were split by context these tables came from the single chain
0001-0004; a database at ``0003`` or later already has them (``paycore migrate`` stamps it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "payments_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("payments",)
depends_on: str | Sequence[str] | None = None
legacy_revision = "0003"  # the revision of the former single chain that created these


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("correlation_id", sa.String(length=36), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("processor", sa.String(length=16), nullable=True),
        sa.Column("requested_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("processed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("correlation_id", name=op.f("pk_payments")),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_requested", ["requested_at_ms"], unique=False)

    op.create_table(
        "payments_leases",
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=100), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_payments_leases")),
    )


def downgrade() -> None:
    op.drop_table("payments_leases")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_requested")

    op.drop_table("payments")
