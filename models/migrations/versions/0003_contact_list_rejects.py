"""contact lists keep their rejects file

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:16:17.177396
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.alter_column(
            "source_file",
            existing_type=sa.String(length=500),
            existing_nullable=True,
            comment="the file's name as uploaded",
        )
        batch_op.add_column(
            sa.Column(
                "rejects_file", sa.String(length=500), nullable=True, comment="CSV of the rows refused, with reasons"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("contact_lists", schema=None) as batch_op:
        batch_op.drop_column("rejects_file")
        batch_op.alter_column("source_file", existing_type=sa.String(length=500), existing_nullable=True, comment=None)
