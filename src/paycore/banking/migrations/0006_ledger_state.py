"""banking: the ledger's state row (how many times an account's status changed)

Revision ID: banking_0006
Revises: banking_0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0006"
down_revision: str | Sequence[str] | None = "banking_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        "banking_ledger_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status_changes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_banking_ledger_state")),
    )
    op.bulk_insert(state, [{"id": 1, "status_changes": 0}])


def downgrade() -> None:
    op.drop_table("banking_ledger_state")
