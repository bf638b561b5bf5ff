"""gateway: holder names sealed

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-12-06

New transactions keep the holder's name only sealed (``holder_sealed``, bound to the
transaction); ``holder`` keeps the names rows stored before held in clear until the gateway
worker seals them at its next start (it needs the card keys, which a migration does not have).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "gateway_0002"
down_revision: str | Sequence[str] | None = "gateway_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder_sealed", sa.Text(), nullable=True))
        batch_op.alter_column("holder", existing_type=sa.String(length=100), nullable=True)


def downgrade() -> None:
    # names sealed since cannot be put back in clear here: they become empty
    op.execute(sa.text("UPDATE gateway_transactions SET holder = '' WHERE holder IS NULL"))
    with op.batch_alter_table("gateway_transactions", schema=None) as batch_op:
        batch_op.alter_column("holder", existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_column("holder_sealed")
