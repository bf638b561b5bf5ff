"""idempotency keys held by a lease; the effect row of each key

Revision ID: platform_0002
Revises: platform_0001
Create Date: 2026-12-06

A claim carries its request's token (``owner``) and when a retry may take it over
(``lease_until``); a claim written before has neither and is held 60 s from its creation, as it
was. ``idempotency_effects`` holds one row per key whose effect committed (ADR 0012).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "platform_0002"
down_revision: str | Sequence[str] | None = "platform_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "idempotency_effects",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_idempotency_effects")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_effects")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("owner")
