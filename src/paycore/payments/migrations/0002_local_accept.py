"""payments: owners of payments and shared processor health (accept=local)

Revision ID: payments_0002
Revises: payments_0001
Create Date: 2026-12-06

API instances that record and dispatch their own payments (ADR 0017) mark each payment with
its owner, share the processors' health reports (only one of them may ask), and hold leases
named after themselves (longer role names).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "payments_0002"
down_revision: str | Sequence[str] | None = "payments_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=48), nullable=True))
    with op.batch_alter_table("payments_leases", schema=None) as batch_op:
        batch_op.alter_column(
            "role", existing_type=sa.String(length=32), type_=sa.String(length=64)
        )
    op.create_table(
        "payments_health",
        sa.Column("processor", sa.String(length=16), nullable=False),
        sa.Column("failing", sa.Boolean(), nullable=False),
        sa.Column("min_response_ms", sa.BigInteger(), nullable=False),
        sa.Column("checked_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("processor", name=op.f("pk_payments_health")),
    )


def downgrade() -> None:
    op.drop_table("payments_health")
    with op.batch_alter_table("payments_leases", schema=None) as batch_op:
        batch_op.alter_column(
            "role", existing_type=sa.String(length=64), type_=sa.String(length=32)
        )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("owner")
