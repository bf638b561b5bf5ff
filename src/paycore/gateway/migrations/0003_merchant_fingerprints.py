"""gateway: card fingerprints per merchant

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-12-06

``fingerprint`` becomes the merchant's own (keyed by the account: one card gives each merchant
a different one); ``platform_fingerprint`` keeps the one that is the same at every merchant, for
the operator only. Rows stored before hold the platform-wide value: it moves to
``platform_fingerprint``, and their ``fingerprint`` becomes NULL (the merchant's own cannot be
computed without the card number, which is not stored; keeping the old value would let
merchants go on matching those cards).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0003"
down_revision: str | Sequence[str] | None = "gateway_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform_fingerprint", sa.String(length=64), nullable=True))
        batch_op.alter_column("fingerprint", existing_type=sa.String(length=64), nullable=True)
    op.execute(
        sa.text(
            "UPDATE gateway_transactions SET platform_fingerprint = fingerprint, fingerprint = NULL"
        )
    )
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.alter_column(
            "platform_fingerprint", existing_type=sa.String(length=64), nullable=False
        )


def downgrade() -> None:
    # the merchant's own fingerprints are dropped: the platform-wide one is what there was
    op.execute(sa.text("UPDATE gateway_transactions SET fingerprint = platform_fingerprint"))
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.alter_column("fingerprint", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("platform_fingerprint")
