"""banking: posted events published from the journal (the last entry the broker confirmed)

Revision ID: banking_0007
Revises: banking_0006
Create Date: 2026-12-07

Until this revision each entry's ``banking.transfer.posted`` event was written to the outbox
with it, so every entry already there has its event on its way: the cursor starts at the
journal's head.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "banking_0007"
down_revision: str | Sequence[str] | None = "banking_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("banking_ledger_state") as batch_op:
        batch_op.add_column(
            sa.Column("published_seq", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE banking_ledger_state"
        " SET published_seq = (SELECT COALESCE(MAX(seq), 0) FROM banking_entries)"
    )


def downgrade() -> None:
    with op.batch_alter_table("banking_ledger_state") as batch_op:
        batch_op.drop_column("published_seq")
